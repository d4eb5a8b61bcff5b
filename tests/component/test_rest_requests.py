"""The REST connector's requests: JSONata or templates per field, every body type, the
reference component's ``reader`` configuration, the trigger; against the demo API."""

from __future__ import annotations

import json
import threading

import pytest

import runtime.mapping.jsonata as expressions
from runtime.testing import run_step
from tests.helpers import ROOT, demo_oauth


def call(cfg, msg=None, name="httpRequest"):
    return run_step(name, msg=msg or {"body": {}}, cfg=cfg, component=ROOT)


def oauth(api):
    return demo_oauth(api, _account="acct-rest")


def echoed(events):
    data = [e for e in events if e.kind == "data"]
    assert data, [e.payload for e in events]
    return data[0].payload["body"]["body"]


ORDER = {
    "body": {"customer": {"id": 42, "name": "Ada"}, "items": [{"sku": "a"}, {"sku": "b"}]},
    "headers": {"x-trace": "t-1"},
    "passthrough": {"step_1": {"body": {"region": "eu"}}},
}


def test_jsonata_in_every_field_with_an_expired_token_on_the_way(demo_api):
    cfg = {
        **oauth(demo_api),
        "method": "POST",
        "url": '"/echo?customer=" & body.customer.id',
        "urlMode": "jsonata",
        "query": '{"count": $count(body.items), "region": passthrough.step_1.body.region}',
        "queryMode": "jsonata",
        "headers": '{"X-Trace": headers."x-trace", "X-Skus": $join(body.items.sku, ",")}',
        "headersMode": "jsonata",
        "body": '{"name": $uppercase(body.customer.name), "skus": body.items.sku}',
        "bodyMode": "jsonata",
    }
    demo_api.book.expire_all()
    events = call(cfg, ORDER)
    assert [e.kind for e in events] == ["updateKeys", "data", "end"]
    got = echoed(events)
    assert got["query"] == {"customer": "42", "count": "2", "region": "eu"}
    assert got["headers"]["X-Trace"] == "t-1"
    assert got["headers"]["X-Skus"] == "a,b"
    assert got["body"] == {"name": "ADA", "skus": ["a", "b"]}
    assert demo_api.stats()["token_calls"] == 1


def test_plain_text_and_jsonata_fields_mix_in_one_step(demo_api):
    cfg = {
        **oauth(demo_api),
        "method": "PUT",
        "url": "/echo?id={{body.customer.id}}",
        "body": '{"total": $sum(body.items.($length(sku)))}',
        "bodyMode": "jsonata",
    }
    got = echoed(call(cfg, ORDER))
    assert got["query"] == {"id": "42"}
    assert got["body"] == {"total": 2}


def test_moment_dates_in_a_request_as_flows_from_the_platform_write_them(demo_api):
    cfg = {
        **oauth(demo_api),
        "method": "POST",
        "url": '"/echo?since=" & $moment(body.due).subtract(1, "month").format("YYYY-MM-DD")',
        "urlMode": "jsonata",
        "body": '{"due": $moment(body.due), "late": $moment(body.due).isBefore("2024-04-01")}',
        "bodyMode": "jsonata",
    }
    got = echoed(call(cfg, {"body": {"due": "2024-03-31T10:00:00Z"}}))
    assert got["query"] == {"since": "2024-02-29"}
    assert got["body"] == {"due": "2024-03-31T10:00:00.000Z", "late": True}


def test_flow_variables_and_passthrough_functions(demo_api):
    cfg = {
        **oauth(demo_api),
        "url": '"/echo?p=" & $getPassthrough().step_1.body.region',
        "urlMode": "jsonata",
    }
    assert echoed(call(cfg, ORDER))["query"] == {"p": "eu"}


def test_a_configuration_from_the_reference_component_works_as_it_is(demo_api):
    """Its expressions read the body, and the passthrough as ``elasticio``, as they did."""
    reader = {
        "method": "POST",
        "url": '"/echo?c=" & customer.id',
        "headers": [{"key": "X-Name", "value": "customer.name"}, {"key": "", "value": ""}],
        "body": {
            "contentType": "application/json",
            "raw": '{"n": $count(items), "region": elasticio.step_1.body.region}',
        },
    }
    got = echoed(call({**oauth(demo_api), "reader": reader}, ORDER))
    assert got["query"] == {"c": "42"}
    assert got["headers"]["X-Name"] == "Ada"
    assert got["body"] == {"n": 2, "region": "eu"}
    form = {
        **reader,
        "body": {
            "contentType": "application/x-www-form-urlencoded",
            "urlencoded": [{"key": "who", "value": "customer.name"}],
        },
    }
    assert echoed(call({**oauth(demo_api), "reader": form}, ORDER))["body"] == {"who": "Ada"}


@pytest.mark.parametrize(
    ("body_type", "body", "mode", "expected"),
    [
        ("application/json", '{"a": "{{body.customer.name}}"}', "text",
         ("application/json", {"a": "Ada"})),
        ("json", None, "text", ("application/json", ORDER["body"])),
        ("application/x-www-form-urlencoded", '{"who": body.customer.name, "n": 2, "l": [1, 2]}',
         "jsonata", ("application/x-www-form-urlencoded", {"who": "Ada", "n": "2", "l": "2"})),
        ("text/plain", "Hello {{body.customer.name}}", "text",
         ("text/plain; charset=utf-8", "Hello Ada")),
        ("text/html", '"<p>" & body.customer.name & "</p>"', "jsonata",
         ("text/html; charset=utf-8", "<p>Ada</p>")),
        ("application/xml", "<who>{{body.customer.name}}</who>", "text",
         ("application/xml; charset=utf-8", "<who>Ada</who>")),
        ("text/xml", '{"who": {"@id": body.customer.id, "#text": body.customer.name}}', "jsonata",
         ("text/xml; charset=utf-8",
          '<?xml version="1.0" encoding="utf-8"?>\n<who id="42">Ada</who>')),
        ("application/octet-stream", "raw {{body.customer.id}}", "text",
         ("application/octet-stream", "raw 42")),
    ],
)  # fmt: skip
def test_body_types(demo_api, body_type, body, mode, expected):
    wire_type, sent = expected
    cfg = {**oauth(demo_api), "method": "POST", "url": "/echo", "bodyType": body_type,
           "bodyMode": mode}  # fmt: skip
    if body is not None:
        cfg["body"] = body
    got = echoed(call(cfg, ORDER))
    assert got["headers"]["Content-Type"] == wire_type
    assert got["body"] == sent


def test_multipart_text_parts_with_an_expired_token_on_the_way(demo_api):
    cfg = {
        **oauth(demo_api),
        "method": "POST",
        "url": "/upload",
        "bodyType": "multipart/form-data",
        "body": '{"name": body.customer.name, "meta": {"id": body.customer.id}}',
        "bodyMode": "jsonata",
    }
    demo_api.book.expire_all()
    events = call(cfg, ORDER)
    assert [e.kind for e in events] == ["updateKeys", "data", "end"]
    got = echoed(events)
    assert got["contentType"].startswith("multipart/form-data; boundary=")
    parts = {p["name"]: p for p in got["parts"]}
    assert parts["name"]["text"] == "Ada"
    assert json.loads(parts["meta"]["text"]) == {"id": 42}


def test_the_polling_trigger_sends_the_same_request(demo_api):
    cfg = {
        **oauth(demo_api),
        "url": '"/echo?polled=" & $string($count($keys(body)))',
        "urlMode": "jsonata",
    }
    events = call(cfg, {"body": {}}, name="httpRequestTrigger")
    assert [e.kind for e in events] == ["data", "end"]
    assert echoed(events)["query"] == {"polled": "0"}


def test_an_expression_compiles_once_per_configuration(demo_api, monkeypatch):
    compiled = []
    real = expressions.Expression.__init__

    def counting(self, text, field):
        compiled.append(text)
        real(self, text, field)

    monkeypatch.setattr(expressions.Expression, "__init__", counting)
    expressions._cache.clear()
    cfg = {**oauth(demo_api), "url": '"/echo?n=" & body.n', "urlMode": "jsonata"}
    for n in range(5):
        assert echoed(call(cfg, {"body": {"n": n}}))["query"] == {"n": str(n)}
    assert compiled == ['"/echo?n=" & body.n']


def test_one_expression_serves_many_threads_at_once():
    expression = expressions.compiled("$string(body.n * 2) & $now()", "body")
    wrong = []

    def work(offset):
        wrong.extend(
            n
            for n in range(offset, offset + 200)
            if not expression.evaluate({"body": {"n": n}}).startswith(str(n * 2))
        )

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("($f := function($x){ $f($x + 1) }; $f(0))", "ran longer than"),
        ("($f := function($x){ 1 + $f($x + 1) }; $f(0))", "recursed too deeply"),
        ('$moment().format("w")', "depends on a locale"),
        ('$moment().add(1, "fortnights")', "is not a unit"),
    ],
)
def test_runaway_and_unknown_expressions_fail_clearly(demo_api, expression, said):
    events = call({**oauth(demo_api), "url": expression, "urlMode": "jsonata"})
    assert [e.kind for e in events] == ["error", "end"]
    message = events[0].payload["message"]
    assert said in message
    assert "field 'url'" in message


def test_an_expression_giving_nothing_sends_no_body_and_objects_in_a_query_are_json(demo_api):
    cfg = {
        **oauth(demo_api),
        "method": "POST",
        "url": "/echo",
        "query": '{"filter": {"id": body.customer.id}}',
        "queryMode": "jsonata",
        "body": "body.missing",
        "bodyMode": "jsonata",
    }
    got = echoed(call(cfg, ORDER))
    assert got["body"] is None
    assert json.loads(got["query"]["filter"]) == {"id": 42}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"headers": '{"X-Key": "secret-value\\r\\nInjected: yes"}'}, "has a line break"),
        ({"url": '"ftp://files.example.com/x"', "urlMode": "jsonata"}, "is not an http(s) URL"),
    ],
)
def test_unsendable_headers_and_urls_are_clear_errors_without_the_values(demo_api, change, said):
    events = call({**oauth(demo_api), "url": "/echo", **change})
    assert [e.kind for e in events] == ["error", "end"]
    assert said in events[0].payload["message"]
    assert "secret-value" not in json.dumps(events[0].payload)
