"""What a session does with its credential, whichever HTTP library it sends with.

``CredentialUse`` holds the credential's live state (its ``Slot``, shared by every session
of this process on that credential), where refreshed keys go, and how it is shared with
other replicas; it decides whether a refresh is due before sending, and refreshes (the
single flight, the lock, the re-read, the merge and the save, runtime.auth.slots). Both
``AuthorizedSession`` and ``AsyncAuthorizedSession`` hold one; refreshing blocks, so the
async session runs it on a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from runtime.auth.credentials import Credentials
from runtime.auth.errors import CredentialError
from runtime.auth.flow import label
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.slots import (
    CACHE,
    CredentialCache,
    OnKeys,
    Refreshed,
    Reload,
    Sharing,
    refresh_once,
)
from runtime.auth.token_client import TOKEN_TIMEOUT, request_token
from runtime.deadlines import adapter as watched_adapter
from runtime.errors import AuthError

RefreshHook = Callable[[Credentials], Mapping[str, Any]]
"""Replaces the token call for non-standard providers: credential in, token response out."""

ResponseHook = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Post-processes a token response before it is merged (rename fields, unwrap envelopes)."""


def leeway_seconds(credentials: Credentials) -> float:
    """How early to refresh: 10 % of the token's lifetime, between 5 s and 5 min, at most half."""
    lifetime = credentials.expires_in
    if not lifetime:
        return 60.0
    return min(300.0, max(5.0, lifetime * 0.1), lifetime / 2)


class CredentialUse:
    """One credential as sessions use it; see ``AuthorizedSession`` for the arguments.

    Sessions of many messages may share one (each saves its refreshes its own way, so
    ``on_keys`` is given to each refresh).
    """

    def __init__(
        self,
        credentials: Credentials | Mapping[str, Any],
        *,
        cache: CredentialCache = CACHE,
        key: str | None = None,
        base_url: str | None = None,
        refresh_credentials: RefreshHook | None = None,
        credentials_from_token_response: ResponseHook | None = None,
        reload: Reload | None = None,
        lock: CredentialLock = IN_PROCESS,
        token_timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        parsed = (
            credentials if isinstance(credentials, Credentials) else Credentials.parse(credentials)
        )
        key = key or parsed.identity()
        self.slot = cache.slot(key, parsed)
        self.sharing = Sharing(key=key, lock=lock, reload=reload)
        self._base_url = base_url
        self._refresh_hook = refresh_credentials
        self._response_hook = credentials_from_token_response
        self._token_timeout = token_timeout
        # Made on the first refresh: most messages never need it.
        self._token_http: requests.Session | None = None

    @property
    def credentials(self) -> Credentials:
        return self.slot.current

    @property
    def base_url(self) -> str | None:
        if self._base_url:
            return self._base_url
        current = self.credentials
        explicit = current.extras.get("baseUrl") or current.extras.get("base_url")
        profile = current.profile
        if explicit:
            return str(explicit)
        if profile is not None and profile.base_url_field:
            value = current.extras.get(profile.base_url_field)
            return str(value) if value else None
        return profile.base_url if profile is not None else None

    def absolute(self, url: str) -> str:
        """The URL a request for ``url`` goes to (relative ones under the base URL).

        Raises:
            CredentialError: a relative URL and no base URL.
        """
        if url.startswith(("https://", "http://")) or urlsplit(url).scheme:
            return url
        base = self.base_url
        if not base:
            raise CredentialError(
                f"relative URL {url!r} needs a base URL (set baseUrl on the credential)"
            )
        return urljoin(base.rstrip("/") + "/", url.lstrip("/"))

    def due(self, *, first_of_message: bool) -> float | None:
        """Whether to refresh before sending: the validity a stored token must still have
        (0 for any), or None when the current token will do."""
        current = self.slot.current
        if not current.can_refresh:
            return None
        policy = current.refresh_policy
        if policy == "always" and first_of_message:
            return 0.0
        leeway = leeway_seconds(current) if policy == "proactive" else 0.0
        if current.access_token is None or current.expires_within(leeway, datetime.now(UTC)):
            return leeway
        return None

    def refresh(
        self, seen: Credentials, min_validity: float = 0.0, on_keys: OnKeys | None = None
    ) -> Refreshed:
        """Replace ``seen``'s token unless a thread or replica already did (blocks); the
        new keys go to ``on_keys`` before anything uses them."""
        if on_keys is None:
            if seen.effective_grant != "client_credentials":
                raise CredentialError(
                    f"{label(seen)} needs refreshing but has nowhere to save the new tokens; "
                    "pass on_keys (in a step, ctx.http does this through updateKeys)"
                )
            on_keys = _discard
        return refresh_once(
            self.slot,
            seen,
            call=self._call_token_endpoint,
            on_keys=on_keys,
            sharing=self.sharing,
            min_validity=min_validity,
        )

    def close(self) -> None:
        if self._token_http is not None:
            self._token_http.close()
            self._token_http = None

    def _call_token_endpoint(self, credentials: Credentials) -> Mapping[str, Any]:
        if self._refresh_hook is not None:
            response = self._refresh_hook(credentials)
        else:
            if self._token_http is None:
                self._token_http = requests.Session()
                self._token_http.mount("https://", watched_adapter())
                self._token_http.mount("http://", watched_adapter())
            response = request_token(
                credentials, http=self._token_http, timeout=self._token_timeout
            )
        if self._response_hook is not None:
            response = self._response_hook(response)
        if not response.get("access_token"):
            raise AuthError(f"{label(credentials)}: the refresh gave no access_token")
        return response


def _discard(_keys: dict[str, Any]) -> None:
    """client_credentials tokens are cheap to fetch again: keeping them in memory is enough."""
