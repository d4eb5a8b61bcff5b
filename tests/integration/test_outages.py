"""The guarantees during outages, as an operator meets them: real workers, RabbitMQ, and
fake servers on 127.0.0.1.

* The platform cannot save refreshed keys, then the worker is stopped: the keys are not
  lost with it. The next worker finds them where the lock store keeps them, the platform
  gets them, and a provider that revokes a grant when a used refresh token comes back
  never sees one.
* A server that trickles its answer, a byte at a time, ends the message with an error
  naming it within the configured bound: an API, and a token endpoint (whose refresh holds
  the credential's lock, so another replica waiting for it must not be blocked for longer).
* A silent API called with a URL relative to the credential's base URL: its host is named.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from tests.helpers import ROOT, demo_oauth
from tests.local_http import Handler, serving


@pytest.fixture
def provider():
    """Rotating refresh tokens with reuse detection and no grace: a used one revokes all."""
    api = DemoApi(ProviderSettings(access_lifetime=300)).start()
    yield api
    api.stop()


def http_step(step, provider, **flow: Any):
    config = {**demo_oauth(provider), "method": "GET", "url": "/records/{{body.id}}"}
    return step("httpRequest", component=ROOT, config=config, **flow)


def stored_keys(platform_api, harness) -> dict[str, Any]:
    return platform_api.state.accounts.get(harness.flow.account, {})


def log_lines(worker, msg: str) -> list[dict[str, Any]]:
    return [entry for entry in worker.logs if entry.get("msg") == msg]


@pytest.mark.parametrize("store", ["file", "redis"])
def test_keys_the_platform_refused_survive_a_stop_and_reach_it_through_the_next_worker(
    step, provider, platform_api, redis_url, tmp_path, store
):
    lock_url = redis_url if store == "redis" else f"file://{tmp_path}/locks"
    harness = http_step(step, provider, credentialLockUrl=lock_url)
    env = {"ELASTICIO_SHUTDOWN_TIMEOUT": "2", "ELASTICIO_UPDATE_KEYS_ROUTING_KEY": ""}
    platform_api.state.fail_accounts = True  # the accounts service is down
    first = harness.start_worker(**env)
    provider.book.expire_all()
    harness.send({"id": 1})
    [out] = harness.take("message", timeout=30)
    assert out["payload"]["body"]["body"]["id"] == 1  # the refreshed token was usable
    refused = first.wait_for_log("keys_not_saved")
    assert "used, as" in refused["next"]
    assert stored_keys(platform_api, harness) == {}  # the platform has nothing new

    first.signal()
    assert first.wait(timeout=30) == 1  # stopping with keys nowhere but the lock store
    [lost] = [e for e in log_lines(first, "keys_not_saved") if e.get("level") == "error"]
    assert lost["account"] == harness.flow.account
    assert lost["fingerprint"]
    assert "stopping" in lost["next"]

    platform_api.state.fail_accounts = False  # the platform is back
    provider.book.expire_all()
    second = harness.start_worker(**env)
    harness.send({"id": 2})
    [out] = harness.take("message", timeout=30)
    assert out["payload"]["body"]["body"]["id"] == 2
    assert second.wait_for_log("credential_reloaded")["fingerprint"] == lost["fingerprint"]

    stats = provider.stats()
    assert stats["invalid_grants"] == 0
    assert stats["reused_refresh_tokens"] == 0
    assert stats["revoked_grants"] == 0
    newest = stored_keys(platform_api, harness)["oauth"]["refresh_token"]
    assert provider.book.refresh_token_alive(newest)  # the platform holds the newest keys
    assert harness.empty("error")
    second.signal()
    assert second.wait() == 0
    if store == "file":
        sealed = b"".join(p.read_bytes() for p in (tmp_path / "locks").glob("*.keys"))
        assert sealed
        assert newest.encode() not in sealed  # sealed, not readable from the disk


class _TricklingProvider(Handler):
    """An API that refuses every token, and a token endpoint that answers 200 with a
    Content-Length of 1 MB, then one byte every 50 ms for as long as anyone listens."""

    def answer(self) -> None:
        if self.path.startswith("/oauth/token"):
            with self.server.lock:
                self.server.token_calls += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(1024 * 1024))
            self.end_headers()
            try:
                while not self.server.stop.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
            return
        if self.path.startswith("/silent"):
            self.server.stop.wait(120)
            return
        body = b'{"error": "invalid_token"}'
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def trickling():
    with serving(_TricklingProvider, stop=threading.Event(), token_calls=0) as server:
        yield server
        server.stop.set()


def test_a_trickling_token_endpoint_fails_both_replicas_in_time_and_frees_the_lock(
    step, trickling, redis_url
):
    config = {
        "type": "oauth2", "clientId": "c", "clientSecret": "client-secret-9",
        "tokenUrl": f"{trickling.url}/oauth/token", "baseUrl": trickling.url,
        "oauth": {"access_token": "at-expired-9", "refresh_token": "rt-9"},
        "method": "GET", "url": "/records/1",
    }  # fmt: skip
    harness = step(
        "httpRequest", component=ROOT, config=config, credentialLockUrl=redis_url, prefetch=1
    )
    env = {"ELASTICIO_TOKEN_TIMEOUT": "2", "ELASTICIO_CREDENTIAL_LOCK_TIMEOUT": "10"}
    replicas = [harness.start_worker(wait=False, **env) for _ in range(2)]
    for worker in replicas:
        worker.wait_for_log("worker_ready", timeout=60)
    harness.send({"n": 1})
    harness.send({"n": 2})
    # One replica holds the lock while its token call trickles; the other waits for it.
    # Each ends with the token endpoint's error within its 2 s, never the lock's 10 s.
    errors = harness.take("error", 2, timeout=2 * 2 + 10)
    for error in errors:
        message = error["payload"]["error"]["message"]
        assert f"the token endpoint at {trickling.host} did not finish answering within 2 s" in (
            message
        )
        assert "held the credential lock" not in message
        assert "client-secret-9" not in message and "rt-9" not in message
    assert trickling.token_calls == 2  # one after the other, the lock let go each time
    failed = [line for w in replicas for line in log_lines(w, "token_refresh_failed")]
    assert len(failed) == 2
    assert {line["host"] for line in failed} == {trickling.host}
    assert not any(log_lines(w, "credential_lock_failed") for w in replicas)


def test_a_trickling_api_answer_is_cut_at_its_bound_with_the_host_named(step, trickling):
    trickling.token_calls = 0
    config = {
        "type": "bearer", "token": "api-token-31", "baseUrl": trickling.url,
        "method": "GET", "url": "/oauth/token-like-answer", "requestTimeoutPeriod": 500,
        "errorPolicy": "throwError",
    }  # fmt: skip
    harness = step("httpRequest", component=ROOT, config=config)
    harness.start_worker()
    harness.send({})
    # The body may take 3 x requestTimeoutPeriod in all: 1.5 s.
    [error] = harness.take("error", timeout=1.5 + 10)
    message = error["payload"]["error"]["message"]
    assert trickling.host in message
    assert "did not finish within 1.5 s: the server is too slow" in message
    assert "api-token-31" not in message


def test_a_silent_api_behind_a_relative_url_is_named_by_its_host(step, trickling):
    config = {
        "type": "bearer", "token": "api-token-32", "baseUrl": trickling.url,
        "method": "GET", "url": "/silent/records/1", "requestTimeoutPeriod": 500,
        "errorPolicy": "throwError",
    }  # fmt: skip
    harness = step("httpRequest", component=ROOT, config=config)
    harness.start_worker()
    harness.send({})
    [error] = harness.take("error", timeout=0.5 + 10)
    message = error["payload"]["error"]["message"]
    assert f"GET {trickling.host}/silent/records/1" in message
    assert "timed out" in message or "too slow" in message
