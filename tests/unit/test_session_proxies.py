"""Steps behind a corporate proxy: the environment's proxy variables still apply to ctx.http."""

from __future__ import annotations

import asyncio

import pytest
import requests

from runtime import bounded
from runtime.auth import AsyncAuthorizedSession, AuthorizedSession
from runtime.auth.cache import CredentialCache
from runtime.auth.use import credential_use
from tests.local_http import Handler, serving


class Proxy(Handler):
    """Answers every request itself, recording the request line a proxy receives."""

    def answer(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        body = b'{"via": "proxy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def bearer_session() -> AuthorizedSession:
    return AuthorizedSession(
        credential_use({"type": "bearer", "token": "tok-1"}, cache=CredentialCache())
    )


def test_requests_go_through_the_proxy_the_environment_names(monkeypatch):
    with serving(Proxy, seen=[]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        answer = bearer_session().get("http://api.invalid/items/1", timeout=5)
    assert answer.json() == {"via": "proxy"}
    assert proxy.seen == [("http://api.invalid/items/1", "Bearer tok-1")]


def test_no_proxy_and_a_changed_environment_take_effect_at_once(monkeypatch):
    with serving(Proxy, seen=[]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        session = bearer_session()
        session.get("http://api.invalid/a", timeout=5)
        monkeypatch.setenv("NO_PROXY", "api.invalid")
        with pytest.raises(requests.ConnectionError):
            session.get("http://api.invalid/b", timeout=5)  # straight to a host that is not there
        monkeypatch.delenv("NO_PROXY")
        session.get("http://api.invalid/c", timeout=5)
    assert [path for path, _ in proxy.seen] == ["http://api.invalid/a", "http://api.invalid/c"]


def test_an_async_step_goes_through_the_proxy_the_environment_names(monkeypatch):
    # The async session decides once per origin and process: a host no other test asks for.
    async def get() -> dict:
        session = AsyncAuthorizedSession(
            credential_use({"type": "bearer", "token": "tok-2"}, cache=CredentialCache())
        )
        try:
            answer = await session.get("http://async-proxied.invalid/items/2?page=1", timeout=5)
            return answer.json()
        finally:
            await session.close()

    with serving(Proxy, seen=[]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "elsewhere.invalid")
        assert asyncio.run(get()) == {"via": "proxy"}
    assert proxy.seen == [("http://async-proxied.invalid/items/2?page=1", "Bearer tok-2")]


def test_an_async_answer_that_is_not_json_says_whose_answer_it_was():
    class NotJson(Handler):
        def answer(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"<html/>!!")

    async def get(url: str) -> None:
        session = AsyncAuthorizedSession({"type": "none"})
        try:
            (await session.get(url, timeout=5)).json()
        finally:
            await session.close()

    with serving(NotJson) as api, pytest.raises(bounded.NotJson) as raised:
        asyncio.run(get(f"{api.url}/x"))
    host = api.url.removeprefix("http://")
    assert str(raised.value).startswith(f"the answer of {host} is not valid JSON")
