"""Steps behind a corporate proxy: the environment's proxy variables still apply to ctx.http."""

from __future__ import annotations

import pytest
import requests

from runtime.auth import AuthorizedSession
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
