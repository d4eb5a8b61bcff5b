"""The REST connector's error handling policy, error codes, timeouts and delay."""

from __future__ import annotations

import itertools
import re
import socket

import pytest

from runtime.auth.cache import CACHE
from runtime.testing import run_step
from tests.component.rest_servers import answers
from tests.helpers import ROOT, demo_oauth


@pytest.fixture
def server():
    with answers() as running:
        yield running


def call(cfg, msg=None):
    cfg = {"type": "none", **cfg}
    return run_step("httpRequest", msg=msg or {"body": {}}, cfg=cfg, component=ROOT)


def kinds(events):
    return [e.kind for e in events]


def requests_to(server, path):
    return sum(1 for seen, _ in server.seen if seen == path)


def test_retry_by_component_is_the_default_and_honours_retry_after(server):
    events = call({"url": f"{server.url}/flaky?times=2"})
    assert kinds(events) == ["data", "end"]
    assert events[0].payload["body"]["body"] == {"ok": True}
    assert requests_to(server, "/flaky") == 3


@pytest.mark.parametrize(
    ("max_retries", "calls", "said"),
    [("2", 2, "gave up after 2 calls"), ("0", 1, "gave up after 1 call")],
    ids=["the number of calls in all, as on the platform", "zero still makes the call once"],
)
def test_max_retries(server, max_retries, calls, said):
    events = call({"url": f"{server.url}/status/503?retry_after=0", "maxRetries": max_retries})
    assert kinds(events) == ["error", "end"]
    message = events[0].payload["message"]
    assert "answered 503" in message and "as asked" in message
    assert said in message
    assert requests_to(server, "/status/503") == calls


def test_rebound_policy_sends_the_message_back(server):
    events = call({"url": f"{server.url}/status/429", "errorPolicy": "rebound"})
    assert kinds(events) == ["rebound", "end"]
    assert "429" in events[0].payload["message"]
    assert requests_to(server, "/status/429") == 1


def test_throw_error_policy_fails_at_once(server):
    events = call({"url": f"{server.url}/status/500", "errorPolicy": "throwError"})
    assert kinds(events) == ["error", "end"]
    assert "answered 500" in events[0].payload["message"]
    assert requests_to(server, "/status/500") == 1


def test_emit_policy_emits_the_error_response_as_data(server):
    events = call({"url": f"{server.url}/status/503", "errorPolicy": "emit"})
    assert kinds(events) == ["data", "end"]
    output = events[0].payload["body"]
    assert output["statusCode"] == 503
    assert output["statusMessage"] == "Service Unavailable"
    assert output["body"] == {"problem": "as asked"}


def test_codes_outside_error_codes_fail_without_retrying(server):
    events = call({"url": f"{server.url}/status/404"})
    assert kinds(events) == ["error", "end"]
    assert requests_to(server, "/status/404") == 1


def test_error_codes_take_codes_and_ranges(server):
    cfg = {"url": f"{server.url}/status/404?retry_after=0", "errorCodes": "400-404, 418",
           "maxRetries": "2"}  # fmt: skip
    assert kinds(call(cfg)) == ["error", "end"]
    assert requests_to(server, "/status/404") == 2
    assert requests_to(server, "/status/503") == 0
    plain_503 = call({"url": f"{server.url}/status/503", "errorCodes": "404"})
    assert kinds(plain_503) == ["error", "end"]
    assert requests_to(server, "/status/503") == 1


def test_ignore_error_codes_are_emitted_before_any_policy(server):
    cfg = {"url": f"{server.url}/status/404", "ignoreErrorCodes": "400, 402-404",
           "errorPolicy": "throwError", "errorCodes": "404"}  # fmt: skip
    events = call(cfg)
    assert kinds(events) == ["data", "end"]
    assert events[0].payload["body"]["statusCode"] == 404


def test_a_timeout_falls_under_the_policy(server):
    cfg = {"url": f"{server.url}/slow?seconds=1", "requestTimeoutPeriod": "100",
           "maxRetries": "2"}  # fmt: skip
    events = call(cfg)
    assert kinds(events) == ["error", "end"]
    assert re.search(r"timed out|too slow", events[0].payload["message"])
    assert "gave up after 2 calls" in events[0].payload["message"]
    assert requests_to(server, "/slow") == 2


@pytest.mark.parametrize(
    ("codes", "said"),
    [
        ("500-abc", "'500-abc' is not a status code or a range"),
        ("200", "codes from 300 to 599"),
        ("599-500", "the first of a range not above the second"),
    ],
)
def test_bad_error_codes_are_named(server, codes, said):
    events = call({"url": f"{server.url}/status/500", "errorCodes": codes})
    assert kinds(events) == ["error", "end"]
    assert said in events[0].payload["message"]
    assert "errorCodes" in events[0].payload["message"]


def test_401_cannot_be_an_error_code_with_oauth2(demo_api):
    CACHE.clear()
    cfg = {**demo_oauth(demo_api), "url": "/me", "errorCodes": "401, 500"}
    events = run_step("httpRequest", msg={"body": {}}, cfg=cfg, component=ROOT)
    assert kinds(events) == ["error", "end"]
    assert "holds 401" in events[0].payload["message"]


def test_delay_spaces_the_steps_calls(server):
    cfg = {"url": f"{server.url}/empty", "delay": "400"}
    for _ in range(3):
        assert kinds(call(cfg)) == ["data", "end"]
    times = [when for path, when in server.seen if path == "/empty"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    assert min(gaps) >= 0.38


@pytest.fixture
def refusing_port():
    """A port bound on 127.0.0.1 that nothing listens on: every connection is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_a_refused_connection_gets_a_short_budget_not_max_retries(refusing_port):
    events = call({"url": f"http://127.0.0.1:{refusing_port}/records"})
    assert kinds(events) == ["error", "end"]
    message = events[0].payload["message"]
    assert f"127.0.0.1:{refusing_port}" in message
    assert "gave up after 2 retries" in message  # not the 10 of maxRetries
    assert "'connectionRetries' up to 10" in message


def test_connection_retries_can_be_none(refusing_port):
    events = call({"url": f"http://127.0.0.1:{refusing_port}/", "connectionRetries": "0"})
    assert kinds(events) == ["error", "end"]
    assert "gave up once" in events[0].payload["message"]


def test_a_refused_connection_under_rebound_is_rebounded_at_once(refusing_port):
    events = call({"url": f"http://127.0.0.1:{refusing_port}/", "errorPolicy": "rebound"})
    assert kinds(events) == ["rebound", "end"]
