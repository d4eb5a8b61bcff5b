"""One body of tests for the rules both sessions keep, run on each: ``SessionRules`` holds the
tests, and each subclass says only how to send with its session (requests, or aiohttp on an
event loop). Against a real HTTP server on 127.0.0.1 that answers from a script."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.auth import (
    AsyncAuthorizedSession,
    AuthorizedSession,
    CredentialError,
    InsufficientScope,
    ReauthRequired,
)
from runtime.auth.cache import CredentialCache
from runtime.auth.use import credential_use
from tests.local_http import Handler, Server, serving

Call = tuple[str, str, dict[str, Any]]
"""A request to send: method, URL (absolute or relative), keyword arguments."""


class ScriptedApi(Handler):
    """``/token`` mints fresh-N; anything else answers the next scripted reply (else 200)."""

    def answer(self) -> None:
        server: Any = self.server
        with server.lock:
            server.seen.append((self.command, self.path, self.headers.get("Authorization")))
            if self.path == "/token":
                server.token_calls += 1
                n = server.token_calls
                status, headers, body = 200, {}, {"access_token": f"fresh-{n}",
                                                  "refresh_token": f"rt-{n}", "expires_in": 3600}  # fmt: skip
            elif server.script:
                status, headers, body = server.script.pop(0)
            else:
                status, headers, body = 200, {}, {"ok": True}
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api() -> Iterator[Server]:
    with serving(ScriptedApi, seen=[], script=[], token_calls=0) as server:
        yield server


def oauth(api: Server, **extra: Any) -> dict[str, Any]:
    return {"type": "oauth2", "clientId": "app", "clientSecret": "app-secret",
            "tokenUrl": f"{api.url}/token", "accessToken": "old", "refreshToken": "rt-0",
            **extra}  # fmt: skip


def bearers(api: Server) -> list[str | None]:
    return [auth for _, path, auth in api.seen if path != "/token"]


class SessionRules:
    """The rules; a subclass implements ``exchange`` with its session."""

    def exchange(
        self, creds: dict[str, Any], calls: list[Call], *, on_keys: Any = None, **options: Any
    ) -> list[tuple[int, Any]]:
        """Send ``calls`` in order on one session; each answer's status and JSON."""
        raise NotImplementedError

    def test_a_refused_token_is_refreshed_once_saved_then_the_request_sent_again(self, api):
        api.script.append((401, {}, {"error": "expired"}))
        saved: list[tuple[dict[str, Any], int]] = []
        answers = self.exchange(
            oauth(api), [("GET", f"{api.url}/me", {})],
            on_keys=lambda keys: saved.append((keys, len(api.seen))),
        )  # fmt: skip
        assert answers == [(200, {"ok": True})]
        assert bearers(api) == ["Bearer old", "Bearer fresh-1"]
        assert api.token_calls == 1
        [(keys, requests_before_save)] = saved
        assert keys["accessToken"] == "fresh-1"
        assert requests_before_save == 2  # the refused request and the token call, not the resend

    def test_a_fresh_token_refused_again_is_reauth_not_a_loop(self, api):
        api.script += [(401, {}, {})] * 5
        with pytest.raises(ReauthRequired, match="even with a freshly refreshed token"):
            self.exchange(oauth(api), [("GET", f"{api.url}/me", {})], on_keys=lambda keys: None)
        assert api.token_calls == 1
        assert len(bearers(api)) == 2

    def test_429_and_503_are_tried_again_within_the_budget(self, api):
        api.script += [(429, {"Retry-After": "0"}, {}), (503, {"Retry-After": "0"}, {})]
        answers = self.exchange(oauth(api), [("POST", f"{api.url}/items", {"json": {"a": 1}})])
        assert answers == [(200, {"ok": True})]
        assert len(bearers(api)) == 3

    def test_a_server_error_is_tried_again_only_for_an_idempotent_method(self, api):
        api.script += [(500, {}, {"e": 1}), (500, {}, {"e": 2})]
        answers = self.exchange(
            oauth(api), [("POST", f"{api.url}/items", {"json": {}}), ("GET", f"{api.url}/items", {})]
        )  # fmt: skip
        assert answers == [(500, {"e": 1}), (200, {"ok": True})]
        assert [method for method, path, _ in api.seen] == ["POST", "GET", "GET"]

    def test_no_transient_retry_when_the_step_has_its_own_policy(self, api):
        api.script.append((503, {"Retry-After": "0"}, {}))
        answers = self.exchange(oauth(api), [("GET", f"{api.url}/me", {})], retries=0)
        assert answers == [(503, {})]

    def test_a_relative_url_goes_under_the_credentials_base_url(self, api):
        self.exchange(oauth(api, baseUrl=f"{api.url}/v2"), [("GET", "/things?x=1", {})])
        assert api.seen[0][1] == "/v2/things?x=1"

    def test_a_relative_url_without_a_base_says_what_to_set(self, api):
        with pytest.raises(CredentialError, match="needs a base URL"):
            self.exchange(oauth(api), [("GET", "/things", {})])

    def test_an_always_credential_is_refreshed_once_before_the_first_request(self, api):
        creds = oauth(api, refresh="always")
        calls = [("GET", f"{api.url}/one", {}), ("GET", f"{api.url}/two", {})]
        self.exchange(creds, calls, on_keys=lambda keys: None)
        assert api.token_calls == 1
        assert bearers(api) == ["Bearer fresh-1", "Bearer fresh-1"]

    def test_a_refresh_with_nowhere_to_save_the_keys_is_refused(self, api):
        api.script.append((401, {}, {}))
        with pytest.raises(CredentialError, match="nowhere to save the new tokens"):
            self.exchange(oauth(api), [("GET", f"{api.url}/me", {})])
        assert api.token_calls == 0

    def test_check_names_the_missing_permission_on_403(self, api):
        api.script.append((403, {}, {"error": "forbidden"}))
        with pytest.raises(InsufficientScope, match="lacks a permission"):
            self.exchange(oauth(api, scopes=["read"]), [("GET", f"{api.url}/me", {"check": 1})])


class TestRequestsSession(SessionRules):
    def exchange(self, creds, calls, *, on_keys=None, **options):
        use = credential_use(creds, cache=CredentialCache())
        answers = []
        with AuthorizedSession(use, on_keys=on_keys, max_retry_wait=5, **options) as http:
            for method, url, kwargs in calls:
                check = kwargs.pop("check", None)
                response = http.request(method, url, **kwargs)
                if check:
                    http.check(response)
                answers.append((response.status_code, response.json()))
        return answers


class TestAiohttpSession(SessionRules):
    def exchange(self, creds, calls, *, on_keys=None, **options):
        async def run() -> list[tuple[int, Any]]:
            use = credential_use(creds, cache=CredentialCache())
            http = AsyncAuthorizedSession(use, on_keys=on_keys, max_retry_wait=5, **options)
            answers = []
            try:
                for method, url, kwargs in calls:
                    check = kwargs.pop("check", None)
                    response = await http.request(method, url, **kwargs)
                    if check:
                        http.check(response)
                    answers.append((response.status_code, response.json()))
            finally:
                await http.close()
            return answers

        return asyncio.run(run())
