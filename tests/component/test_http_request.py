"""Action httpRequest, end to end against the demo API on 127.0.0.1."""

from __future__ import annotations

import base64

import pytest

from runtime.devtools.demo.api import API_KEY, BASIC_USER
from runtime.testing import run_step, run_step_outcome
from tests.helpers import ROOT, demo_oauth


def oauth(api, **extra):
    return demo_oauth(api, _account="acct-1", **extra)


def call(cfg, msg=None):
    return run_step("httpRequest", msg=msg or {"body": {}}, cfg=cfg, component=ROOT)


def test_get_with_oauth2_emits_the_response(demo_api):
    events = call({**oauth(demo_api), "method": "GET", "url": "/me"})
    assert [e.kind for e in events] == ["data", "end"]
    data = events[0].payload["body"]
    assert data["statusCode"] == 200
    assert data["body"] == {"id": "user-1", "name": "Demo User", "email": "demo@example.com"}
    assert data["headers"]["content-type"] == "application/json"
    assert data["statusMessage"] == "OK"


def test_templates_fill_url_query_headers_and_body(demo_api):
    message = {"body": {"customer": {"id": 42, "tags": ["a", "b"]}, "note": "hi"}}
    events = call(
        {
            **oauth(demo_api),
            "method": "POST",
            "url": "/echo?customer={{body.customer.id}}",
            "query": '{"note": "{{body.note}}"}',
            "headers": {"X-Customer": "{{body.customer.id}}"},
            "body": '{"id": "{{body.customer.id}}", "tags": "{{body.customer.tags}}", '
            '"text": "customer {{body.customer.id}} says {{body.note}}"}',
        },
        message,
    )
    echoed = events[0].payload["body"]["body"]
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"customer": "42", "note": "hi"}
    assert echoed["headers"]["X-Customer"] == "42"
    assert echoed["body"] == {"id": 42, "tags": ["a", "b"], "text": "customer 42 says hi"}


def test_an_empty_body_field_sends_the_incoming_body(demo_api):
    events = call({**oauth(demo_api), "method": "PUT", "url": "/echo"}, {"body": {"k": 1}})
    assert events[0].payload["body"]["body"]["body"] == {"k": 1}


def test_form_bodies(demo_api):
    events = call(
        {
            **oauth(demo_api),
            "method": "POST",
            "url": "/echo",
            "bodyType": "form",
            "body": {"a": "{{body.x}}", "n": 2},
        },
        {"body": {"x": "y"}},
    )
    assert events[0].payload["body"]["body"]["body"] == {"a": "y", "n": "2"}


def test_a_missing_template_value_is_a_clear_error(demo_api):
    events = call({**oauth(demo_api), "url": "/customers/{{body.customer.id}}"}, {"body": {}})
    assert [e.kind for e in events] == ["error", "end"]
    message = events[0].payload["message"]
    assert "template {{body.customer.id}}" in message
    assert "has no field 'customer'" in message


def test_non_2xx_is_an_error_by_default_or_data_when_asked(demo_api):
    events, outcome = run_step_outcome(
        "httpRequest", cfg={**oauth(demo_api), "url": "/status/404"}, component=ROOT
    )
    assert outcome.failed
    host = demo_api.url.removeprefix("http://")
    assert events[0].payload["message"].startswith(f"GET {host}/api/status/404 answered 404")
    passed = call({**oauth(demo_api), "url": "/status/404", "passNonSuccess": True})
    assert passed[0].payload["body"]["statusCode"] == 404


def test_429_with_retry_after_is_retried_then_succeeds(demo_api):
    events = call({**oauth(demo_api), "url": "/limited?key=k1&times=2&retry_after=0"})
    assert events[0].payload["body"]["body"] == {"ok": True, "attempts": 3}


def test_persistent_429_or_503_can_rebound(demo_api):
    cfg = {
        **oauth(demo_api),
        "url": "/limited?key=k2&times=100&retry_after=0&status=503",
        "reboundOnRateLimit": True,
    }
    events = call(cfg)
    assert [e.kind for e in events] == ["rebound", "end"]
    assert "503" in events[0].payload["message"]


def test_large_responses_fail_clearly(demo_api):
    events = call({**oauth(demo_api), "url": "/big?bytes=5000", "maxResponseBytes": 1000})
    assert "larger than 1,000 bytes" in events[0].payload["message"]
    small = call({**oauth(demo_api), "url": "/big?bytes=50"})
    assert small[0].payload["body"]["bodyEncoding"] == "base64"
    assert base64.b64decode(small[0].payload["body"]["body"]) == b"x" * 50


def test_an_expired_token_is_refreshed_once_and_saved_through_update_keys(demo_api):
    cfg = {**oauth(demo_api), "url": "/me"}
    demo_api.book.expire_all()
    events = call(cfg)
    assert [e.kind for e in events] == ["updateKeys", "data", "end"]
    keys = events[0].payload
    assert keys["oauth"]["refresh_token"] != cfg["oauth"]["refresh_token"]
    assert keys["clientSecret"] == "demo-secret"
    assert "url" not in keys  # only the credential's own fields are saved
    assert demo_api.stats()["token_calls"] == 1


@pytest.mark.parametrize(
    "credential",
    [
        {"type": "api_key", "key": API_KEY},
        {"type": "api_key", "key": API_KEY, "keyLocation": "query", "keyName": "api_key"},
        {"type": "basic", "username": BASIC_USER[0], "password": BASIC_USER[1]},
    ],
)
def test_api_key_and_basic_credentials(demo_api, credential):
    events = call({**credential, "baseUrl": f"{demo_api.url}/api", "url": "/me"})
    assert events[0].payload["body"]["statusCode"] == 200


def test_a_tenant_chosen_in_the_step_is_sent_as_the_provider_header(demo_api):
    cfg = {**oauth(demo_api), "url": "/echo", "tenantId": "tenant-2"}
    echoed = call(cfg)[0].payload["body"]["body"]
    assert echoed["headers"]["X-Tenant-Id"] == "tenant-2"


def test_static_headers_from_the_credential(demo_api):
    cfg = {**oauth(demo_api), "url": "/echo", "staticHeaders": '{"Xero-Tenant-Id": "t-9"}'}
    echoed = call(cfg)[0].payload["body"]["body"]
    assert echoed["headers"]["Xero-Tenant-Id"] == "t-9"
