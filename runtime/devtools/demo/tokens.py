"""The demo provider's token book-keeping: short-lived access tokens, rotating refresh tokens.

Behaves like the strict providers (Auth0 and Okta with reuse detection, oidc-provider): each
sign-in starts a *grant*; a refresh token works once and is replaced by a new one of the
same grant; presenting a used refresh token again is taken as theft and revokes the whole
grant (every access and refresh token of it), so the user must sign in again. A grace
period (``reuse_grace_seconds``, Auth0's "reuse interval", Okta's "grace period") lets a
just-used refresh token be presented again for a few seconds without that. Authorization
codes are single-use and bound to their PKCE challenge.
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
    reuse_detection: bool = True
    """Presenting a used refresh token revokes its whole grant."""
    reuse_grace_seconds: float = 0.0
    """For this long after its first use a refresh token may be used again, harmlessly."""
    token_delay: float = 0.0
    """Seconds the token endpoint takes to answer (a slow provider)."""
    send_expires_in: bool = True
    expires_in_as_string: bool = False
    instance_url: str = ""
    client_auth: str = "any"
    """``basic``, ``body`` or ``any``: where the provider accepts the client's credentials."""


class GrantRefused(Exception):
    """The demo provider refuses a token request (``error`` is the OAuth2 error code the
    answer carries, ``status`` its HTTP status)."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass
class _RefreshToken:
    grant: int
    access: str = ""
    """The access token issued with it: refreshing after that one expired meets its expiry."""
    used_at: float | None = None


@dataclass
class TokenBook:
    settings: ProviderSettings = field(default_factory=ProviderSettings)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _access: dict[str, tuple[float, int]] = field(default_factory=dict, init=False)
    _refresh: dict[str, _RefreshToken] = field(default_factory=dict, init=False)
    _codes: dict[str, tuple[str, str | None]] = field(default_factory=dict, init=False)
    _revoked: set[int] = field(default_factory=set, init=False)
    _grants: int = field(default=0, init=False)
    _expired_seen: set[str] = field(default_factory=set, init=False)
    token_calls: int = field(default=0, init=False)
    grants: dict[str, int] = field(default_factory=dict, init=False)
    reused_refresh_tokens: int = field(default=0, init=False)
    invalid_grants: int = field(default=0, init=False)

    def issue_refresh_token(self, grant: int | None = None, access: str = "") -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        with self._lock:
            chosen = self._new_grant() if grant is None else grant
            self._refresh[token] = _RefreshToken(chosen, access)
        return token

    def issue_code(self, redirect_uri: str, challenge: str | None) -> str:
        code = "code-" + secrets.token_urlsafe(12)
        with self._lock:
            self._codes[code] = (redirect_uri, challenge)
        return code

    def access_valid(self, token: str) -> bool:
        with self._lock:
            entry = self._access.get(token)
            if entry is None or entry[1] in self._revoked:
                return False
            if time.monotonic() < entry[0]:
                return True
            self._expired_seen.add(token)
            return False

    def expire_all(self) -> None:
        """Every access token issued so far stops working (as if its lifetime had passed)."""
        with self._lock:
            now = time.monotonic()
            self._access = {t: (min(now, expiry), g) for t, (expiry, g) in self._access.items()}

    def revoke_all(self) -> None:
        """Every grant so far is revoked, as when the user disconnects the app."""
        with self._lock:
            self._revoked.update(entry.grant for entry in self._refresh.values())

    def refresh_token_alive(self, token: str) -> bool:
        """True when this refresh token would be honoured now (unused, grant not revoked)."""
        with self._lock:
            entry = self._refresh.get(token)
            return entry is not None and entry.used_at is None and entry.grant not in self._revoked

    @property
    def revoked_grants(self) -> int:
        return len(self._revoked)

    @property
    def expiries_met(self) -> int:
        """Distinct access tokens whose expiry a client met: it presented one after it expired,
        or refreshed with the refresh token issued alongside it after it expired. However many
        clients meet one token's expiry, that is one expiry, and one refresh is all it needs."""
        return len(self._expired_seen)

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        """Answer a token request, or raise ``GrantRefused`` with the OAuth2 error code."""
        with self._lock:
            self.token_calls += 1
            kind = form.get("grant_type", "")
            self.grants[kind] = self.grants.get(kind, 0) + 1
        if self.settings.token_delay > 0:
            time.sleep(self.settings.token_delay)
        self._authenticate_client(form, basic)
        try:
            if kind == "refresh_token":
                return self._refresh_grant(form.get("refresh_token", ""))
            if kind == "client_credentials":
                return self._issue(grant=None, with_refresh=False)
            if kind == "authorization_code":
                return self._code_grant(form)
        except GrantRefused as refused:
            if refused.error == "invalid_grant":
                with self._lock:
                    self.invalid_grants += 1
            raise
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
        settings = self.settings
        with self._lock:
            entry = self._refresh.get(token)
            if entry is None or entry.grant in self._revoked:
                raise GrantRefused("invalid_grant")
            now = time.monotonic()
            companion = self._access.get(entry.access)
            if companion is not None and now >= companion[0]:
                self._expired_seen.add(entry.access)
            if entry.used_at is not None:
                if now - entry.used_at > settings.reuse_grace_seconds:
                    self.reused_refresh_tokens += 1
                    if settings.reuse_detection:
                        self._revoked.add(entry.grant)
                    raise GrantRefused("invalid_grant")
            elif settings.rotate_refresh_tokens:
                entry.used_at = now
            grant = entry.grant
        return self._issue(grant=grant, with_refresh=settings.rotate_refresh_tokens)

    def consent(self) -> dict[str, object]:
        """A token set as if a user had just signed in: a new grant."""
        return self._issue(grant=None, with_refresh=True)

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
        return self._issue(grant=None, with_refresh=True)

    def _new_grant(self) -> int:
        self._grants += 1
        return self._grants

    def _issue(self, *, grant: int | None, with_refresh: bool) -> dict[str, object]:
        access = "at-" + secrets.token_urlsafe(16)
        with self._lock:
            if grant is None:
                grant = self._new_grant()
            self._access[access] = (time.monotonic() + self.settings.access_lifetime, grant)
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
            answer["refresh_token"] = self.issue_refresh_token(grant, access)
        return answer
