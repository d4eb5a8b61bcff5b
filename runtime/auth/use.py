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

from runtime.auth.cache import CACHE, CredentialCache, Refreshed, Reload, Sharing, Slot
from runtime.auth.credentials import Credentials
from runtime.auth.errors import CredentialError
from runtime.auth.flow import label
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.slots import OnKeys, refresh_once
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


class TokenCall:
    """How a credential gets a new token: the token endpoint (on a session made on first
    use, as most messages never refresh), or a hook for a provider that is not standard."""

    def __init__(
        self,
        *,
        refresh_credentials: RefreshHook | None = None,
        credentials_from_token_response: ResponseHook | None = None,
        timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        self._refresh_hook = refresh_credentials
        self._response_hook = credentials_from_token_response
        self._timeout = timeout
        self._http: requests.Session | None = None

    def __call__(self, credentials: Credentials) -> Mapping[str, Any]:
        if self._refresh_hook is not None:
            response = self._refresh_hook(credentials)
        else:
            if self._http is None:
                self._http = requests.Session()
                self._http.mount("https://", watched_adapter())
                self._http.mount("http://", watched_adapter())
            response = request_token(credentials, http=self._http, timeout=self._timeout)
        if self._response_hook is not None:
            response = self._response_hook(response)
        if not response.get("access_token"):
            raise AuthError(f"{label(credentials)}: the refresh gave no access_token")
        return response

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def credential_use(
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
) -> CredentialUse:
    """A credential ready for sessions to use: the one place its options are given.

    Args:
        credentials: a ``Credentials`` or a dict in any shape ``Credentials.parse`` reads.
        cache: where the credential's live state is shared between sessions and threads.
        key: the credential's key in the cache (the platform account id when known).
        base_url: resolves relative URLs; by default the profile's or ``instance_url``.
        refresh_credentials: replaces the token endpoint call.
        credentials_from_token_response: post-processes each token response.
        reload: re-reads the credential's own store (the platform, a credentials file), in
            case another process refreshed it.
        lock: serialises refreshes with the other processes sharing the credential (see
            ``runtime.auth.locks``); by default only threads of this process.
        token_timeout: seconds one token refresh may take in all, retries and a trickling
            answer included (the credential's locks are held meanwhile).
    """
    parsed = credentials if isinstance(credentials, Credentials) else Credentials.parse(credentials)
    key = key or parsed.identity()
    return CredentialUse(
        cache.slot(key, parsed),
        Sharing(key=key, lock=lock, reload=reload),
        base_url=base_url,
        token_call=TokenCall(
            refresh_credentials=refresh_credentials,
            credentials_from_token_response=credentials_from_token_response,
            timeout=token_timeout,
        ),
    )


class CredentialUse:
    """One credential as sessions use it (made by ``credential_use``).

    Sessions of many messages may share one (each saves its refreshes its own way, so
    ``on_keys`` is given to each refresh); a session closes the use it was given when it
    closes, unless the use is ``shared``: then its owner closes it.
    """

    def __init__(
        self,
        slot: Slot,
        sharing: Sharing,
        *,
        base_url: str | None = None,
        token_call: TokenCall | None = None,
        shared: bool = False,
    ) -> None:
        self.slot = slot
        self.sharing = sharing
        self.shared = shared
        self._base_url = base_url
        self._token_call = token_call or TokenCall()

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
            call=self._token_call,
            on_keys=on_keys,
            sharing=self.sharing,
            min_validity=min_validity,
        )

    def close(self) -> None:
        self._token_call.close()


def _discard(_keys: dict[str, Any]) -> None:
    """client_credentials tokens are cheap to fetch again: keeping them in memory is enough."""
