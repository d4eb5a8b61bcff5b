"""``AuthorizedSession``: a ``requests.Session`` that signs, refreshes once on 401, and resends.

The flow for each request, bounded by construction::

    proactive check (policy) → sign → send ─┬─ 429/503/5xx/network: transient budget → sign → send
                                            └─ 401 or an "expired" signal:
                                                 one single-flight refresh (unless another thread
                                                 or replica already replaced the token) → sign →
                                                 send once → still refused: AuthError, never a loop

A token taken from another replica (rather than refreshed here) that is refused too is
refreshed once more: at most two refreshes per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from runtime.auth.credentials import Credentials
from runtime.auth.environment import ca_bundle, environment_proxies
from runtime.auth.errors import (
    BodyNotReplayable,
    CredentialError,
    InsufficientScope,
    ReauthRequired,
)
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    SERVER_ERRORS,
    RetryBudget,
    retry_after_seconds,
)
from runtime.auth.signing import sign
from runtime.auth.slots import (
    CACHE,
    CredentialCache,
    OnKeys,
    Refreshed,
    Reload,
    Sharing,
    Slot,
    refresh_once,
)
from runtime.auth.token_client import TOKEN_TIMEOUT, request_token
from runtime.deadlines import adapter as watched_adapter
from runtime.deadlines import deadline
from runtime.errors import AuthError
from runtime.network import AnswerTooSlow, host_of

DEFAULT_TIMEOUT = 60.0
MAX_REFRESHES = 2
"""Per request: one for our refused token, one more if the tokens another replica saved are
refused too."""
_EXPIRED_MARKERS = ("INVALID_SESSION_ID", "InvalidAuthenticationToken")
_SEND_OPTIONS = frozenset(
    {"timeout", "allow_redirects", "proxies", "stream", "verify", "cert", "_rewind_to"}
)

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


class AuthorizedSession(requests.Session):
    """A session that signs every request with a credential and keeps its token fresh.

    Args:
        credentials: a ``Credentials`` or a dict in any shape ``Credentials.parse`` reads.
        on_keys: receives the whole merged credential after each refresh, and must return
            before the new token is used; if it raises, the request fails with that error.
        cache: where the credential's live state is shared between sessions and threads.
        key: the credential's key in the cache (the platform account id when known).
        base_url: resolves relative URLs; by default the profile's or ``instance_url``.
        timeout: seconds per attempt when the call gives none: each socket read, and the
            whole attempt (connecting, headers, and the body unless ``stream=True``), so a
            server that trickles its answer fails in time too (``AnswerTooSlow``).
        refresh_credentials: replaces the token endpoint call.
        credentials_from_token_response: post-processes each token response.
        reload: re-reads the credential's own store (the platform, a credentials file), in
            case another process refreshed it.
        lock: serialises refreshes with the other processes sharing the credential (see
            ``runtime.auth.locks``); by default only threads of this process.
        adapter: a shared connection pool, so short-lived sessions keep connections alive;
            make it with ``runtime.deadlines.adapter`` so whole-attempt deadlines hold.
        retries: transient retries allowed per request (429, 503, 5xx for idempotent
            methods, network errors).
        max_retry_wait: seconds those retries may wait in all.
        token_timeout: seconds one token refresh may take in all, retries and a trickling
            answer included (the credential's locks are held meanwhile).
    """

    def __init__(
        self,
        credentials: Credentials | Mapping[str, Any],
        *,
        on_keys: OnKeys | None = None,
        cache: CredentialCache = CACHE,
        key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        refresh_credentials: RefreshHook | None = None,
        credentials_from_token_response: ResponseHook | None = None,
        reload: Reload | None = None,
        lock: CredentialLock = IN_PROCESS,
        adapter: HTTPAdapter | None = None,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        token_timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        super().__init__()
        parsed = (
            credentials if isinstance(credentials, Credentials) else Credentials.parse(credentials)
        )
        key = key or parsed.identity()
        self._slot: Slot = cache.slot(key, parsed)
        self._sharing = Sharing(key=key, lock=lock, reload=reload)
        self._on_keys = on_keys
        self._base_url = base_url
        self._timeout = timeout
        self._refresh_hook = refresh_credentials
        self._response_hook = credentials_from_token_response
        self._shared_adapter = adapter is not None
        self.retries = retries
        """Transient retries per request; a step with its own retry policy sets 0."""
        self._max_retry_wait = max_retry_wait
        self._token_timeout = token_timeout
        # Made on the first refresh: a step's session lives for one message and rarely needs it.
        self._token_http: requests.Session | None = None
        self._first_request = threading.Lock()
        self._always_done = False
        pool = adapter if adapter is not None else watched_adapter()
        self.mount("https://", pool)
        self.mount("http://", pool)
        # The environment's proxies come through merge_environment_settings, looked up once
        # per host; .netrc does not apply, as every request is signed with the credential.
        self.trust_env = False

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Mapping[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> Any:
        merged = dict(proxies or {})
        text = url.decode() if isinstance(url, bytes) else url or ""
        for scheme, proxy in environment_proxies(text, merged.get("no_proxy")).items():
            merged.setdefault(scheme, proxy)
        if verify is True or verify is None:
            verify = ca_bundle() or verify
        return super().merge_environment_settings(url, merged, stream, verify, cert)

    @property
    def credentials(self) -> Credentials:
        """The credential as it is now (after any refresh)."""
        return self._slot.current

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
        if urlsplit(url).scheme:
            return url
        base = self.base_url
        if not base:
            raise CredentialError(
                f"relative URL {url!r} needs a base URL (set baseUrl on the credential)"
            )
        return urljoin(base.rstrip("/") + "/", url.lstrip("/"))

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        target = self.absolute(url.decode() if isinstance(url, bytes) else url)
        kwargs.setdefault("timeout", self._timeout)
        if _seekable(kwargs.get("data")):
            # A file body (an upload spooled to disk) is sent again from where it started.
            kwargs["_rewind_to"] = kwargs["data"].tell()
        replayable = _replayable(kwargs)
        budget = RetryBudget(attempts=self.retries, max_wait=self._max_retry_wait)
        seen, minted = self._before_send()
        refreshes = 0
        while True:
            response = self._send_with_retries(
                verb=verb,
                url=target,
                credentials=seen,
                kwargs=kwargs,
                budget=budget,
                replayable=replayable,
            )
            if not _expired(response) or not seen.can_refresh:
                return response
            if minted or refreshes == MAX_REFRESHES:
                raise self._refused_after_refresh(response)
            if not replayable:
                raise BodyNotReplayable(
                    f"{verb} {_where(target)} needs to be sent again after refreshing the "
                    "token, but its body was a one-shot stream; pass bytes, a dict or a seekable "
                    "file instead"
                )
            response.close()
            refreshed = self._refresh(seen)
            seen, minted = refreshed.credentials, refreshed.minted
            refreshes += 1

    def check(self, response: requests.Response) -> requests.Response:
        """Raise a typed error for 401 and 403, ``HTTPError`` for other failures."""
        if response.status_code == 401:
            raise ReauthRequired(
                f"{_where(response.url)} refused the credential (401); the user may need to "
                "reconnect it"
            )
        if response.status_code == 403:
            scopes = " ".join(self.credentials.scopes) or "none requested"
            raise InsufficientScope(
                f"{_where(response.url)} refused the operation (403): the credential lacks a "
                f"permission (scopes: {scopes}); grant it and reconnect"
            )
        response.raise_for_status()
        return response

    def close(self) -> None:
        if self._token_http is not None:
            self._token_http.close()
        if not self._shared_adapter:
            super().close()

    # --- the flow ----------------------------------------------------------------------

    def _before_send(self) -> tuple[Credentials, bool]:
        """The credential to sign with, and whether it was just minted for this request."""
        current = self._slot.current
        if not current.can_refresh:
            return current, False
        policy = current.refresh_policy
        if policy == "always":
            with self._first_request:
                if not self._always_done:
                    fresh = self._refresh(current)
                    self._always_done = True
                    return fresh.credentials, fresh.minted
        now = datetime.now(UTC)
        leeway = leeway_seconds(current) if policy == "proactive" else 0.0
        if current.access_token is None or current.expires_within(leeway, now):
            fresh = self._refresh(current, min_validity=leeway)
            return fresh.credentials, fresh.minted
        return current, False

    def _refresh(self, seen: Credentials, *, min_validity: float = 0.0) -> Refreshed:
        on_keys = self._on_keys
        if on_keys is None:
            if seen.effective_grant == "client_credentials":
                on_keys = _discard
            else:
                raise CredentialError(
                    f"{_label(seen)} needs refreshing but has nowhere to save the new tokens; "
                    "pass on_keys (in a step, ctx.http does this through updateKeys)"
                )
        return refresh_once(
            self._slot,
            seen,
            call=self._call_token_endpoint,
            on_keys=on_keys,
            sharing=self._sharing,
            min_validity=min_validity,
        )

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
            raise AuthError(f"{_label(credentials)}: the refresh gave no access_token")
        return response

    def _send_with_retries(
        self,
        *,
        verb: str,
        url: str,
        credentials: Credentials,
        kwargs: dict[str, Any],
        budget: RetryBudget,
        replayable: bool,
    ) -> requests.Response:
        while True:
            try:
                response = self._send_once(verb, url, credentials, kwargs)
            except requests.exceptions.ConnectionError:
                safe = verb in IDEMPOTENT_METHODS and replayable
                if safe and budget.wait(None):
                    continue
                raise
            if replayable and _transient(verb, response.status_code):
                wait = retry_after_seconds(response.headers)
                if budget.wait(wait):
                    response.close()
                    continue
            return response

    def _send_once(
        self, verb: str, url: str, credentials: Credentials, kwargs: dict[str, Any]
    ) -> requests.Response:
        if "_rewind_to" in kwargs:
            kwargs["data"].seek(kwargs["_rewind_to"])
        request_args = {k: v for k, v in kwargs.items() if k not in _SEND_OPTIONS}
        prepared = self.prepare_request(requests.Request(method=verb, url=url, **request_args))
        sign(prepared, credentials)
        environment = self.merge_environment_settings(
            prepared.url,
            kwargs.get("proxies") or {},
            kwargs.get("stream"),
            kwargs.get("verify"),
            kwargs.get("cert"),
        )
        timeout = kwargs.get("timeout")
        seconds = _whole(timeout)
        with deadline(seconds, too_slow=lambda: AnswerTooSlow(host_of(url), seconds or 0)):
            return self.send(
                prepared,
                timeout=timeout,
                allow_redirects=kwargs.get("allow_redirects", True),
                **environment,
            )

    def _refused_after_refresh(self, response: requests.Response) -> ReauthRequired:
        return ReauthRequired(
            f"{_where(response.url)} refused {_label(self.credentials)} ({response.status_code}) "
            "even with a freshly refreshed token; re-authentication may be needed"
        )


def _whole(timeout: Any) -> float | None:
    """The whole attempt's bound for a ``requests`` timeout (a number, or connect and read)."""
    if isinstance(timeout, int | float):
        return float(timeout)
    if isinstance(timeout, tuple) and all(isinstance(t, int | float) for t in timeout):
        return float(sum(timeout))
    return None


def _discard(_keys: dict[str, Any]) -> None:
    """client_credentials tokens are cheap to fetch again: keeping them in memory is enough."""


def _transient(verb: str, status: int) -> bool:
    return status in RETRYABLE_STATUSES or (status in SERVER_ERRORS and verb in IDEMPOTENT_METHODS)


def _expired(response: requests.Response) -> bool:
    if response.status_code == 401:
        return True
    if 'error="invalid_token"' in response.headers.get("WWW-Authenticate", ""):
        return True
    if response.status_code in (400, 403):
        text = response.text[:2000]
        return any(marker in text for marker in _EXPIRED_MARKERS)
    return False


def _seekable(data: Any) -> bool:
    seekable = getattr(data, "seekable", None)
    return callable(seekable) and bool(seekable()) and hasattr(data, "read")


def _replayable(kwargs: Mapping[str, Any]) -> bool:
    data = kwargs.get("data")
    if _seekable(data):
        return True
    if data is None or isinstance(data, str | bytes | bytearray | Mapping | list | tuple):
        return not kwargs.get("files") or all(
            not hasattr(value, "read") for value in _file_values(kwargs["files"])
        )
    return False


def _file_values(files: Any) -> list[Any]:
    items = files.values() if isinstance(files, Mapping) else [f[1] for f in files]
    return [item[1] if isinstance(item, tuple) else item for item in items]


def _where(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.netloc}{parts.path}" or "the API"


def _label(credentials: Credentials) -> str:
    name = f" {credentials.name!r}" if credentials.name else ""
    return f"{credentials.type} credential{name}"
