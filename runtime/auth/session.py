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
from contextlib import closing
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from runtime.auth.cache import Refreshed
from runtime.auth.credentials import Credentials
from runtime.auth.environment import ca_bundle, environment_proxies
from runtime.auth.flow import Discard, Failed, Pause, Peek, Refresh, Send
from runtime.auth.session_core import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_WAIT,
    DEFAULT_TIMEOUT,
    Finished,
    SessionCore,
    advance,
    seekable,
)
from runtime.auth.signing import sign
from runtime.auth.slots import OnKeys
from runtime.auth.use import CredentialUse, leeway_seconds
from runtime.deadlines import adapter as watched_adapter
from runtime.deadlines import deadline
from runtime.network import AnswerTooSlow, host_of

__all__ = ["DEFAULT_TIMEOUT", "AuthorizedSession", "leeway_seconds"]

_SEND_OPTIONS = frozenset(
    {"timeout", "allow_redirects", "proxies", "stream", "verify", "cert", "_rewind_to"}
)


class AuthorizedSession(SessionCore, requests.Session):
    """A session that signs every request with a credential and keeps its token fresh.

    Args:
        credentials: a ``Credentials``, a dict in any shape ``Credentials.parse`` reads, or
            a ``CredentialUse`` from ``runtime.auth.credential_use`` (its cache, key, lock,
            reload and token hooks; sessions of many messages may share one).
        on_keys: receives the whole merged credential after each refresh, and must return
            before the new token is used; if it raises, the request fails with that error.
        timeout: seconds per attempt when the call gives none: each socket read, and the
            whole attempt (connecting, headers, and the body unless ``stream=True``), so a
            server that trickles its answer fails in time too (``AnswerTooSlow``).
        retries: transient retries allowed per request (429, 503, 5xx for idempotent
            methods, network errors).
        max_retry_wait: seconds those retries may wait in all.
        adapter: a shared connection pool, so short-lived sessions keep connections alive;
            make it with ``runtime.deadlines.adapter`` so whole-attempt deadlines hold.
    """

    def __init__(
        self,
        credentials: Credentials | Mapping[str, Any] | CredentialUse,
        *,
        adapter: HTTPAdapter | None = None,
        on_keys: OnKeys | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_retry_wait: float = DEFAULT_RETRY_WAIT,
    ) -> None:
        requests.Session.__init__(self)
        SessionCore.__init__(
            self,
            credentials,
            on_keys=on_keys,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
        )
        self._shared_adapter = adapter is not None
        self._first_request = threading.Lock()
        self.kept = False
        """Kept for the next message by its owner: ``release`` leaves it open."""
        pool = adapter if adapter is not None else watched_adapter()
        self.mount("https://", pool)
        self.mount("http://", pool)
        # The environment's proxies come through merge_environment_settings, looked up once
        # per host; .netrc does not apply, as every request is signed with the credential.
        self.trust_env = False

    def begin_message(self, on_keys: OnKeys) -> None:
        """See ``SessionCore.begin_message``. (ctx.http keeps one sync session per
        credential and thread rather than build one per message.)"""
        super().begin_message(on_keys)
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

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        target = self.absolute(url.decode() if isinstance(url, bytes) else url)
        kwargs.setdefault("timeout", self._timeout)
        if seekable(kwargs.get("data")):
            # A file body (an upload spooled to disk) is sent again from where it started.
            kwargs["_rewind_to"] = kwargs["data"].tell()
        seen, minted = self._before_send()
        call = (verb, target, kwargs)
        # The flow is closed however the request ends (an action that raised included).
        with closing(self._flow(seen, minted, verb, target, _replayable(kwargs))) as flow:
            step = advance(flow, None)
            while not isinstance(step, Finished):
                step = advance(flow, self._handler(step)(step, call))
            response: requests.Response = step.response  # type: ignore[assignment]
            return response

    def release(self) -> None:
        """The message it served ended: close it, unless it is kept for the next one."""
        self._end_message()
        if not self.kept:
            self.close()

    def close(self) -> None:
        self._close_use()
        if not self._shared_adapter:
            super().close()

    # --- the flow's actions, with requests ------------------------------------------------

    def _send(self, action: Send, call: tuple[str, str, dict[str, Any]]) -> Any:
        verb, target, kwargs = call
        try:
            return self._send_once(verb, target, action.credentials, kwargs)
        except requests.exceptions.ConnectionError as exc:
            return Failed(exc)

    def _peek(self, action: Peek, _call: object) -> str:
        text: str = action.response.text[:2000]  # type: ignore[attr-defined]
        return text

    def _discard(self, action: Discard, _call: object) -> None:
        action.response.close()  # type: ignore[attr-defined]

    def _pause(self, action: Pause, _call: object) -> None:
        time.sleep(action.seconds)

    def _refresh_for(self, action: Refresh, _call: object) -> Refreshed:
        return self._refresh(action.seen)

    def _before_send(self) -> tuple[Credentials, bool]:
        """The credential to sign with, and whether it was just minted for this request."""
        if self._always_pending():
            # Threads sharing the session wait for the ``always`` refresh instead of sending
            # the token it replaces.
            with self._first_request:
                return self._refreshed_if_due()
        return self._refreshed_if_due()

    def _refreshed_if_due(self) -> tuple[Credentials, bool]:
        min_validity = self._due_before_send()
        if min_validity is None:
            return self._use.credentials, False
        fresh = self._refresh(self._use.credentials, min_validity)
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


def _replayable(kwargs: Mapping[str, Any]) -> bool:
    data = kwargs.get("data")
    if seekable(data):
        return True
    if data is None or isinstance(data, str | bytes | bytearray | Mapping | list | tuple):
        return not kwargs.get("files") or all(
            not hasattr(value, "read") for value in _file_values(kwargs["files"])
        )
    return False


def _file_values(files: Any) -> list[Any]:
    items = files.values() if isinstance(files, Mapping) else [f[1] for f in files]
    return [item[1] if isinstance(item, tuple) else item for item in items]
