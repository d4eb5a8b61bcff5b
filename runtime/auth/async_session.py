"""``AsyncAuthorizedSession``: ``ctx.http`` for ``async def`` steps, on aiohttp.

It follows the very rules of ``AuthorizedSession`` (runtime.auth.flow drives both): each
attempt signed afresh, one refresh per credential across tasks, threads, processes and
machines, the keys saved before the new token is used, a transient budget for 429/503 (and
5xx of idempotent methods) honouring ``Retry-After``, and a deadline on the whole answer.
The common path (sign, send, read, see a 401) is native async; the rare refresh runs the
shared machinery (runtime.auth.slots: single flight, lock, re-read, merge, save) on a
thread of its own, while the tasks of the same credential wait for it on the loop.

The surface is the one step authors know from requests: ``get``/``post``/... with
``params=``, ``json=``, ``data=``, ``headers=``, ``timeout=``; the answer has
``status_code``, ``headers``, ``ok``, ``content``, ``text``, ``json()`` and
``raise_for_status()``, and ``check`` raises the typed errors. Failures are the exceptions
of requests (``requests.exceptions.ConnectionError``, ``Timeout``...), naming the host, so
one ``except`` serves both kinds of step. Answers are read whole (up to ``max_bytes``)
unless ``stream=True``; then ``await response.read(...)`` or ``iter_chunks`` reads them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import requests

import runtime.auth.session_core as core
from runtime import bounded
from runtime.auth.aiohttp_io import MAX_BYTES, Body, HttpPool, pairs, read_all, tls, translated
from runtime.auth.async_response import AsyncResponse
from runtime.auth.cache import Refreshed, Slot, fingerprint
from runtime.auth.credentials import Credentials
from runtime.auth.environment import proxy_for
from runtime.auth.flow import Discard, Failed, Pause, Peek, Refresh, Send
from runtime.auth.session_core import DEFAULT_TIMEOUT, Finished, SessionCore, advance
from runtime.auth.signing import auth_headers, auth_query
from runtime.auth.slots import OnKeys
from runtime.auth.use import CredentialUse
from runtime.network import AnswerTooSlow, host_of

__all__ = ["DEFAULT_TIMEOUT", "AsyncAuthorizedSession", "AsyncResponse", "HttpPool"]

# Refreshes block (a lock, a token call, a save); they get threads of their own, so that a
# refresh waiting for its keys to be saved can never wait for a thread a refresh holds.
_REFRESHING = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="refresh")
_FLIGHTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Slot, asyncio.Lock]
] = weakref.WeakKeyDictionary()


class AsyncAuthorizedSession(SessionCore):
    """Like ``AuthorizedSession`` (the same first five arguments), for ``async def`` steps;
    cheap to make.

    Args:
        pool: the connections, shared by the sessions of a loop; by default one of its own.
        max_bytes: the most an answer read whole may have.
    """

    def __init__(
        self,
        credentials: Credentials | Mapping[str, Any] | CredentialUse,
        *,
        pool: HttpPool | None = None,
        max_bytes: int = MAX_BYTES,
        on_keys: OnKeys | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = core.DEFAULT_RETRIES,
        max_retry_wait: float = core.DEFAULT_RETRY_WAIT,
    ) -> None:
        super().__init__(
            credentials,
            on_keys=on_keys,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
        )
        self._own_pool = pool is None
        self._pool = pool or HttpPool()
        self._max_bytes = max_bytes

    async def get(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("DELETE", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> AsyncResponse:
        return await self.request("OPTIONS", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = True,
        max_redirects: int = 10,
        verify: bool = True,
        stream: bool = False,
        max_bytes: int | None = None,
    ) -> AsyncResponse:
        """Send a signed request; refreshed once on 401, resent; see the module's docstring.

        Args:
            timeout: seconds for the whole attempt, connecting and the answer (its body
                too unless ``stream``); the session's default when None.
            stream: leave the body unread (``await response.read()`` reads it).
            max_bytes: the most a body read whole may have.
        """
        verb = method.upper()
        target = self.absolute(url)
        if not target.lower().startswith(("https://", "http://")):
            scheme = urlsplit(target).scheme
            raise requests.exceptions.InvalidSchema(
                f"{verb} {host_of(target)}: {scheme!r} is not http or https"
            )
        body = Body(data, json)
        attempt = _Attempt(
            verb=verb,
            url=with_query(target, pairs(params)),
            headers=dict(headers or {}),
            body=body,
            seconds=self._timeout if timeout is None else timeout,
            redirects=max_redirects if allow_redirects else None,
            verify=verify,
            max_bytes=None if stream else self._max_bytes if max_bytes is None else max_bytes,
        )
        seen, minted = await self._before_send()
        with contextlib.closing(self._flow(seen, minted, verb, target, body.replayable)) as flow:
            step = advance(flow, None)
            while not isinstance(step, Finished):
                step = advance(flow, await self._handler(step)(step, attempt))
            response: AsyncResponse = step.response  # type: ignore[assignment]
            return response

    def release(self) -> None:
        """The message it served ended: let go of what it holds (what is shared stays)."""
        self._end_message()
        self._close_use()
        if self._own_pool:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing is open
                asyncio.get_running_loop().create_task(self._pool.close())

    async def close(self) -> None:
        self._close_use()
        if self._own_pool:
            await self._pool.close()

    # --- the flow's actions, with aiohttp -------------------------------------------------

    async def _send(self, action: Send, attempt: _Attempt) -> Any:
        try:
            return await self._send_once(attempt, action.credentials)
        except requests.exceptions.ConnectionError as exc:
            return Failed(exc)

    async def _peek(self, action: Peek, attempt: _Attempt) -> str:
        response: AsyncResponse = action.response  # type: ignore[assignment]
        limit = self._max_bytes if attempt.max_bytes is None else attempt.max_bytes
        raw = await response.read(limit=limit, seconds=attempt.seconds)
        return raw[:2000].decode(response.encoding or "utf-8", errors="replace")

    async def _discard(self, action: Discard, _attempt: object) -> None:
        action.response.close()  # type: ignore[attr-defined]

    async def _pause(self, action: Pause, _attempt: object) -> None:
        await asyncio.sleep(action.seconds)

    async def _refresh_for(self, action: Refresh, _attempt: object) -> Refreshed:
        return await self._refresh(action.seen)

    async def _before_send(self) -> tuple[Credentials, bool]:
        min_validity = self._due_before_send()
        if min_validity is None:
            return self._use.credentials, False
        fresh = await self._refresh(self._use.credentials, min_validity)
        return fresh.credentials, fresh.minted

    async def _refresh(self, seen: Credentials, min_validity: float = 0.0) -> Refreshed:
        slot = self._use.slot
        if fingerprint(slot.current) != fingerprint(seen):
            return Refreshed(slot.current, slot.minted)  # another task got there first
        async with _flight(slot):
            if fingerprint(slot.current) != fingerprint(seen):
                return Refreshed(slot.current, slot.minted)
            loop = asyncio.get_running_loop()
            call = functools.partial(self._use.refresh, seen, min_validity, self._on_keys)
            return await loop.run_in_executor(_REFRESHING, call)

    async def _send_once(self, attempt: _Attempt, credentials: Credentials) -> AsyncResponse:
        headers = {**attempt.headers, **auth_headers(credentials)}
        url = with_query(attempt.url, list(auth_query(credentials).items()))
        data = attempt.body.payload(headers)
        try:
            async with asyncio.timeout(attempt.seconds):
                raw = await self._pool.client().request(
                    attempt.verb,
                    url,
                    data=data,
                    headers=headers,
                    allow_redirects=attempt.redirects is not None,
                    # aiohttp stops when the count reaches its limit; N means N followed here,
                    # as in requests and axios.
                    max_redirects=(attempt.redirects or 0) + 1,
                    ssl=tls(attempt.verify),
                    proxy=proxy_for(url),
                )
                content = None
                if attempt.max_bytes is not None:
                    content = await read_all(raw, attempt.max_bytes, url)
        except TimeoutError:
            raise AnswerTooSlow(host_of(url), attempt.seconds) from None
        except bounded.OutOfBounds:
            raise
        except (aiohttp.ClientError, ValueError) as exc:
            raise translated(exc, attempt.verb, url) from exc
        return AsyncResponse(raw, attempt.verb, content)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What every attempt of one request sends."""

    verb: str
    url: str
    """With the caller's query parameters; each attempt adds the credential's."""
    headers: dict[str, str]
    body: Body
    seconds: float
    redirects: int | None
    """The most redirects to follow; None to hand a redirect back as the answer."""
    verify: bool
    max_bytes: int | None
    """The most an answer read whole may have; None to leave it unread (``stream``)."""


def _flight(slot: Slot) -> asyncio.Lock:
    """The loop's lock for a credential: its tasks refresh one at a time."""
    loop = asyncio.get_running_loop()
    flights = _FLIGHTS.setdefault(loop, weakref.WeakKeyDictionary())
    lock = flights.get(slot)
    if lock is None:
        lock = flights[slot] = asyncio.Lock()
    return lock


def with_query(url: str, query: list[tuple[str, str]]) -> str:
    if not query:
        return url
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(query)}"
