"""The REST connector's responses: parsed by content type, shaped as the platform's REST API
component documents its output; redirects, TLS, size limits and timeouts."""

from __future__ import annotations

import base64
import re

import pytest

from runtime.testing import run_step
from tests.component.rest_servers import PNG, answers, tls_answers
from tests.helpers import ROOT

NONE = {"type": "none"}


@pytest.fixture(scope="module")
def server():
    with answers() as running:
        yield running


def call(cfg, msg=None):
    return run_step("httpRequest", msg=msg or {"body": {}}, cfg={**NONE, **cfg}, component=ROOT)


def data_of(events):
    assert [e.kind for e in events] == ["data", "end"], [e.payload for e in events]
    return events[0].payload


def test_output_has_the_fields_the_reference_component_documents(server):
    """Its README's "Output": headers, statusCode (100-599), statusMessage, body; and the
    incoming message's attachments carried on."""
    incoming = {"body": {}, "attachments": {"in.txt": {"url": "http://x/in", "size": 2}}}
    message = data_of(call({"url": f"{server.url}/cookies"}, incoming))
    output = message["body"]
    assert set(output) == {"statusCode", "statusMessage", "headers", "body"}
    assert isinstance(output["statusCode"], int) and 100 <= output["statusCode"] <= 599
    assert output["statusMessage"] == "OK"
    assert isinstance(output["headers"], dict)
    assert all(name == name.lower() for name in output["headers"])
    assert output["body"] == {}
    assert message["attachments"] == incoming["attachments"]


def test_repeated_headers_are_lists_and_set_cookie_always_is(server):
    headers = data_of(call({"url": f"{server.url}/cookies"}))["body"]["headers"]
    assert headers["set-cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    assert headers["x-one"] == "single"
    assert headers["content-type"] == "application/json"


def test_xml_is_turned_into_json(server):
    body = data_of(call({"url": f"{server.url}/xml"}))["body"]["body"]
    assert body == {
        "order": {
            "_attr": {"id": "7", "xmlns:ns": "urn:x"},
            "ns-item": [
                {"_attr": {"sku": "a"}, "_": "Pen"},
                {"_attr": {"sku": "b"}, "_": "Ink"},
            ],
            "note": "fragile",
        }
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/notype-json", {"untyped": True}), ("/notype-text", "just words"), ("/text", "café")],
)
def test_untyped_answers_are_json_if_they_parse_else_text(server, path, expected):
    assert data_of(call({"url": server.url + path}))["body"]["body"] == expected


def test_an_empty_answer_has_no_body(server):
    output = data_of(call({"url": f"{server.url}/empty"}))["body"]
    assert "body" not in output
    assert output["statusCode"] == 200


def test_binary_answers_come_as_base64(server):
    output = data_of(call({"url": f"{server.url}/png"}))["body"]
    assert output["bodyEncoding"] == "base64"
    assert base64.b64decode(output["body"]) == PNG


def test_response_encoding_base64_gives_the_raw_bytes(server):
    output = data_of(call({"url": f"{server.url}/xml", "responseEncoding": "base64"}))["body"]
    assert base64.b64decode(output["body"]).startswith(b'<?xml version="1.0"?><order')


def test_redirects_are_followed_up_to_max_redirects(server):
    assert data_of(call({"url": f"{server.url}/redirect/3"}))["body"]["body"] == {"arrived": True}
    events = call({"url": f"{server.url}/redirect/3", "maxRedirects": "2"})
    assert [e.kind for e in events] == ["error", "end"]
    assert "redirected more than 2 times" in events[0].payload["message"]


def test_max_redirects_zero_emits_the_redirect_itself(server):
    output = data_of(call({"url": f"{server.url}/redirect/1", "maxRedirects": "0"}))["body"]
    assert output["statusCode"] == 302
    assert output["headers"]["location"] == "/redirect/0"


def test_a_self_signed_certificate_fails_unless_no_strict_ssl(tmp_path, capsys):
    with tls_answers(tmp_path) as tls:
        url = f"https://127.0.0.1:{tls.server_address[1]}/cookies"
        refused = call({"url": url, "errorPolicy": "throwError"})
        assert [e.kind for e in refused] == ["error", "end"]
        assert "certificate" in refused[0].payload["message"].lower()
        capsys.readouterr()
        accepted = call({"url": url, "noStrictSSL": True})
        assert data_of(accepted)["body"]["statusCode"] == 200
        assert "tls_verification_off" in capsys.readouterr().out


def test_a_response_over_the_size_limit_is_a_clear_error(server):
    events = call({"url": f"{server.url}/png", "maxContentLength": "100"})
    assert [e.kind for e in events] == ["error", "end"]
    assert "larger than 100 bytes" in events[0].payload["message"]
    assert "maxContentLength" in events[0].payload["message"]


def test_a_slow_server_times_out_under_the_request_timeout(server):
    events = call(
        {"url": f"{server.url}/slow?seconds=2", "requestTimeoutPeriod": "200",
         "errorPolicy": "throwError"}
    )  # fmt: skip
    assert [e.kind for e in events] == ["error", "end"]
    assert re.search(r"timed out|too slow", events[0].payload["message"])


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("requestTimeoutPeriod", "0", "between 1 and 1,140,000"),
        ("maxRedirects", "11", "between 0 and 10"),
        ("maxRetries", "abc", "between 0 and 10"),
        ("maxContentLength", str(30 * 1024 * 1024), "between 1 and 20,971,520"),
        ("responseEncoding", "latin1", "use utf8 or base64"),
        ("errorPolicy", "sometimes", "use one of byComponent"),
        ("bodyType", "application/yaml", "is not a content type we send"),
    ],
)
def test_bad_options_are_named_and_nothing_is_sent(server, field, value, said):
    sent_before = len(server.seen)
    events = call({"url": f"{server.url}/cookies", "method": "POST", field: value})
    assert [e.kind for e in events] == ["error", "end"]
    assert said in events[0].payload["message"]
    assert field in events[0].payload["message"] or field == "bodyType"
    assert len(server.seen) == sent_before
