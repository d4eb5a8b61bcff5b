"""The demo provider's token book-keeping: short-lived access tokens, rotating refresh tokens.

Behaves like the strict providers: a refresh token works once (``invalid_grant`` when it is
reused), access tokens expire after a few seconds, authorization codes are single-use and
bound to their PKCE challenge.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ProviderSettings:
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    access_lifetime: float = 5.0
    rotate_refresh_tokens: bool = True
    send_expires_in: bool = True
    expires_in_as_string: bool = False
    instance_url: str = ""
    client_auth: str = "any"
    """``basic``, ``body`` or ``any``: where the provider accepts the client's credentials."""


class GrantRefused(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass
class TokenBook:
    settings: ProviderSettings = field(default_factory=ProviderSettings)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _access: dict[str, float] = field(default_factory=dict)
    _refresh: dict[str, bool] = field(default_factory=dict)
    _codes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    token_calls: int = 0
    grants: dict[str, int] = field(default_factory=dict)
    reused_refresh_tokens: int = 0

    def issue_refresh_token(self) -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        with self._lock:
            self._refresh[token] = True
        return token

    def issue_code(self, redirect_uri: str, challenge: str | None) -> str:
        code = "code-" + secrets.token_urlsafe(12)
        with self._lock:
            self._codes[code] = (redirect_uri, challenge)
        return code

    def access_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._access.get(token)
        return expiry is not None and time.monotonic() < expiry

    def expire_all(self) -> None:
        with self._lock:
            self._access.clear()

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        """Answer a token request, or raise ``GrantRefused`` with the OAuth2 error code."""
        with self._lock:
            self.token_calls += 1
            kind = form.get("grant_type", "")
            self.grants[kind] = self.grants.get(kind, 0) + 1
        self._authenticate_client(form, basic)
        if kind == "refresh_token":
            return self._refresh_grant(form.get("refresh_token", ""))
        if kind == "client_credentials":
            return self._issue(with_refresh=False)
        if kind == "authorization_code":
            return self._code_grant(form)
        raise GrantRefused("unsupported_grant_type")

    def _authenticate_client(self, form: dict[str, str], basic: tuple[str, str] | None) -> None:
        wanted = (self.settings.client_id, self.settings.client_secret)
        body = (form.get("client_id", ""), form.get("client_secret", ""))
        mode = self.settings.client_auth
        accepted = (mode in ("basic", "any") and basic == wanted) or (
            mode in ("body", "any") and body == wanted
        )
        if not accepted:
            raise GrantRefused("invalid_client", 401)

    def _refresh_grant(self, token: str) -> dict[str, object]:
        with self._lock:
            state = self._refresh.get(token)
            if state is None:
                raise GrantRefused("invalid_grant")
            if state is False:
                self.reused_refresh_tokens += 1
                raise GrantRefused("invalid_grant")
            if self.settings.rotate_refresh_tokens:
                self._refresh[token] = False
        return self._issue(with_refresh=self.settings.rotate_refresh_tokens)

    def _code_grant(self, form: dict[str, str]) -> dict[str, object]:
        with self._lock:
            stored = self._codes.pop(form.get("code", ""), None)
        if stored is None:
            raise GrantRefused("invalid_grant")
        redirect_uri, challenge = stored
        if form.get("redirect_uri") != redirect_uri:
            raise GrantRefused("invalid_grant")
        if challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                raise GrantRefused("invalid_grant")
        return self._issue(with_refresh=True)

    def _issue(self, *, with_refresh: bool) -> dict[str, object]:
        access = "at-" + secrets.token_urlsafe(16)
        with self._lock:
            self._access[access] = time.monotonic() + self.settings.access_lifetime
        answer: dict[str, object] = {
            "access_token": access,
            "token_type": "bearer",
            "scope": "records.read records.write",
        }
        if self.settings.instance_url:
            answer["instance_url"] = self.settings.instance_url
        if self.settings.send_expires_in:
            lifetime = int(self.settings.access_lifetime)
            answer["expires_in"] = str(lifetime) if self.settings.expires_in_as_string else lifetime
        if with_refresh:
            answer["refresh_token"] = self.issue_refresh_token()
        return answer
