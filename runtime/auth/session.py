"""``AuthorizedSession``: a ``requests.Session`` that signs, refreshes once on 401, and resends.

The flow for each request is ``runtime.auth.flow`` (the same for the async session), bounded
by construction::

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
import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from runtime.auth.credentials import Credentials
from runtime.auth.environment import ca_bundle, environment_proxies
from runtime.auth.flow import (
    Discard,
    Failed,
    Pause,
    Peek,
    Refresh,
    Send,
    refusal,
    request_flow,
)
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.retry import RetryBudget
from runtime.auth.signing import sign
from runtime.auth.slots import CACHE, CredentialCache, OnKeys, Refreshed, Reload
from runtime.auth.token_client import TOKEN_TIMEOUT
from runtime.auth.use import CredentialUse, RefreshHook, ResponseHook, leeway_seconds
from runtime.deadlines import adapter as watched_adapter
from runtime.deadlines import deadline
from runtime.network import AnswerTooSlow, host_of

__all__ = ["DEFAULT_TIMEOUT", "AuthorizedSession", "leeway_seconds"]

DEFAULT_TIMEOUT = 60.0
_SEND_OPTIONS = frozenset(
    {"timeout", "allow_redirects", "proxies", "stream", "verify", "cert", "_rewind_to"}
)


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
        use: the credential as other sessions use it already (made from the arguments
            above when None): sessions of many messages share one.
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
        use: CredentialUse | None = None,
    ) -> None:
        super().__init__()
        self._on_keys = on_keys
        self._own_use = use is None
        self._use = use or CredentialUse(
            credentials,
            cache=cache,
            key=key,
            base_url=base_url,
            refresh_credentials=refresh_credentials,
            credentials_from_token_response=credentials_from_token_response,
            reload=reload,
            lock=lock,
            token_timeout=token_timeout,
        )
        self._timeout = timeout
        self._shared_adapter = adapter is not None
        self.retries = retries
        """Transient retries per request; a step with its own retry policy sets 0."""
        self._max_retry_wait = max_retry_wait
        self._first_request = threading.Lock()
        self._always_done = False
        self.kept = False
        """Kept for the next message by its owner: ``release`` leaves it open."""
        pool = adapter if adapter is not None else watched_adapter()
        self.mount("https://", pool)
        self.mount("http://", pool)
        # The environment's proxies come through merge_environment_settings, looked up once
        # per host; .netrc does not apply, as every request is signed with the credential.
        self.trust_env = False

    def begin_message(self, on_keys: OnKeys) -> None:
        """Serve a new message: its keys go to ``on_keys``, and an ``always`` credential is
        refreshed again before its first request. (ctx.http keeps one session per
        credential and thread rather than build one per message.)"""
        self._on_keys = on_keys
        self._always_done = False
        self.retries = 3
        self.max_redirects = requests.models.DEFAULT_REDIRECT_LIMIT

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
        return self._use.credentials

    @property
    def base_url(self) -> str | None:
        return self._use.base_url

    def absolute(self, url: str) -> str:
        """The URL a request for ``url`` goes to (relative ones under the base URL).

        Raises:
            CredentialError: a relative URL and no base URL.
        """
        return self._use.absolute(url)

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        target = self.absolute(url.decode() if isinstance(url, bytes) else url)
        kwargs.setdefault("timeout", self._timeout)
        if _seekable(kwargs.get("data")):
            # A file body (an upload spooled to disk) is sent again from where it started.
            kwargs["_rewind_to"] = kwargs["data"].tell()
        seen, minted = self._before_send()
        flow = request_flow(
            seen,
            minted,
            verb=verb,
            target=target,
            replayable=_replayable(kwargs),
            budget=RetryBudget(attempts=self.retries, max_wait=self._max_retry_wait),
        )
        answer: Any = None
        while True:
            try:
                action = flow.send(answer)
            except StopIteration as done:
                response: requests.Response = done.value
                return response
            answer = self._perform(action, verb, target, kwargs)

    def check(self, response: requests.Response) -> requests.Response:
        """Raise a typed error for 401 and 403, ``HTTPError`` for other failures."""
        refused = refusal(response.url, response.status_code, self.credentials)
        if refused is not None:
            raise refused
        response.raise_for_status()
        return response

    def release(self) -> None:
        """The message it served ended: close it, unless it is kept for the next one."""
        if not self.kept:
            self.close()

    def close(self) -> None:
        if self._own_use:
            self._use.close()
        if not self._shared_adapter:
            super().close()

    # --- the flow's actions, with requests ------------------------------------------------

    def _perform(self, action: Any, verb: str, target: str, kwargs: dict[str, Any]) -> Any:
        if isinstance(action, Send):
            try:
                return self._send_once(verb, target, action.credentials, kwargs)
            except requests.exceptions.ConnectionError as exc:
                return Failed(exc)
        if isinstance(action, Peek):
            return action.response.text[:2000]  # type: ignore[attr-defined]
        if isinstance(action, Discard):
            action.response.close()  # type: ignore[attr-defined]
            return None
        if isinstance(action, Pause):
            time.sleep(action.seconds)
            return None
        if isinstance(action, Refresh):
            return self._refresh(action.seen)
        raise TypeError(f"unknown action {action!r}")

    def _before_send(self) -> tuple[Credentials, bool]:
        """The credential to sign with, and whether it was just minted for this request."""
        current = self._use.credentials
        if current.can_refresh and current.refresh_policy == "always":
            with self._first_request:
                if not self._always_done:
                    fresh = self._refresh(current)
                    self._always_done = True
                    return fresh.credentials, fresh.minted
        min_validity = self._use.due(first_of_message=False)
        if min_validity is None:
            return current, False
        fresh = self._refresh(current, min_validity)
        return fresh.credentials, fresh.minted

    def _refresh(self, seen: Credentials, min_validity: float = 0.0) -> Refreshed:
        return self._use.refresh(seen, min_validity, self._on_keys)

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


def _whole(timeout: Any) -> float | None:
    """The whole attempt's bound for a ``requests`` timeout (a number, or connect and read)."""
    if isinstance(timeout, int | float):
        return float(timeout)
    if isinstance(timeout, tuple) and all(isinstance(t, int | float) for t in timeout):
        return float(sum(timeout))
    return None


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
