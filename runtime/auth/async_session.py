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
import ssl
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson
import requests

from runtime import bounded
from runtime.auth.credentials import Credentials
from runtime.auth.environment import ca_bundle, environment_proxy
from runtime.auth.flow import Discard, Failed, Pause, Peek, Refresh, Send, refusal, request_flow
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.retry import RetryBudget
from runtime.auth.signing import auth_headers, auth_query
from runtime.auth.slots import CACHE, CredentialCache, OnKeys, Refreshed, Reload, Slot, fingerprint
from runtime.auth.token_client import TOKEN_TIMEOUT
from runtime.auth.use import CredentialUse, RefreshHook, ResponseHook
from runtime.network import AnswerTooSlow, host_of

DEFAULT_TIMEOUT = 60.0
MAX_BYTES = 100 * 1024 * 1024
"""Bytes an answer read whole may have: a bound on memory, not on a real API."""
CHUNK = 64 * 1024

# Refreshes block (a lock, a token call, a save); they get threads of their own, so that a
# refresh waiting for its keys to be saved can never wait for a thread a refresh holds.
_REFRESHING = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="refresh")
_FLIGHTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Slot, asyncio.Lock]
] = weakref.WeakKeyDictionary()


class HttpPool:
    """The connections of one event loop, shared by every async session on it."""

    def __init__(self, *, limit: int = 0) -> None:
        self._limit = limit
        self._client: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        """The pool's aiohttp session (made on first use, on the running loop)."""
        if self._client is None or self._client.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, ttl_dns_cache=300)
            self._client = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                # Proxies come from runtime.auth.environment, looked up once per host.
                trust_env=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class AsyncResponse:
    """An API's answer, read as requests' ``Response`` is."""

    def __init__(self, raw: aiohttp.ClientResponse, method: str, content: bytes | None) -> None:
        self._raw = raw
        self._content = content
        self.status_code = raw.status
        self.reason = raw.reason or ""
        self.headers = raw.headers
        self.url = str(raw.url)
        self.request = SimpleNamespace(method=method, url=self.url)

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def encoding(self) -> str | None:
        return self._raw.charset

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("a streamed answer is read with 'await response.read()'")
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")

    def json(self) -> Any:
        return bounded.loads(self.content, what=f"the answer of {host_of(self.url)}")

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            kind = "Client" if self.status_code < 500 else "Server"
            raise requests.HTTPError(
                f"{self.status_code} {kind} Error: {self.reason} for url: {self.url}",
                response=self,  # type: ignore[arg-type]
            )

    async def read(self, *, limit: int = MAX_BYTES, seconds: float = DEFAULT_TIMEOUT) -> bytes:
        """The whole body of a streamed answer, within ``limit`` bytes and ``seconds`` in all.

        Raises:
            bounded.TooLarge, bounded.TooSlow: naming the server.
        """
        if self._content is None:
            what = f"the answer of {host_of(self.url)}"
            try:
                async with asyncio.timeout(seconds):
                    self._content = await _read_all(self._raw, limit, self.url)
            except TimeoutError:
                self.close()
                raise bounded.TooSlow(
                    f"{what} did not finish within {seconds:g} s: the server is too slow"
                ) from None
            except aiohttp.ClientError as exc:
                self.close()
                raise bounded.TooSlow(f"{what} broke off ({type(exc).__name__})") from None
        return self._content

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header's links by their ``rel``, as requests gives them."""
        header = self.headers.get("Link")
        if not header:
            return {}
        found = requests.utils.parse_header_links(header)
        return {str(link.get("rel") or link.get("url")): link for link in found}

    async def iter_chunks(self, size: int = CHUNK) -> AsyncIterator[bytes]:
        """The body of a streamed answer as it arrives (bound it with asyncio.timeout)."""
        if self._content is not None:
            yield self._content
            return
        try:
            async for chunk in self._raw.content.iter_chunked(size):
                yield chunk
        except aiohttp.ClientError as exc:
            raise _translated(exc, self.request.method, self.url) from exc
        finally:
            self._raw.release()

    def close(self) -> None:
        self._raw.close()


class AsyncAuthorizedSession:
    """Like ``AuthorizedSession`` (same arguments), for ``async def`` steps; cheap to make.

    Args:
        pool: the connections, shared by the sessions of a loop; by default one of its own.
        max_bytes: the most an answer read whole may have.
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
        pool: HttpPool | None = None,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        token_timeout: float = TOKEN_TIMEOUT,
        max_bytes: int = MAX_BYTES,
        use: CredentialUse | None = None,
    ) -> None:
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
        self._own_pool = pool is None
        self._pool = pool or HttpPool()
        self.retries = retries
        """Transient retries per request; a step with its own retry policy sets 0."""
        self._max_retry_wait = max_retry_wait
        self._max_bytes = max_bytes
        self._always_done = False

    @property
    def credentials(self) -> Credentials:
        """The credential as it is now (after any refresh)."""
        return self._use.credentials

    @property
    def base_url(self) -> str | None:
        return self._use.base_url

    def absolute(self, url: str) -> str:
        return self._use.absolute(url)

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
        body = _Body(data, json)
        attempt = _Attempt(
            verb=verb,
            url=target,
            params=params,
            headers=dict(headers or {}),
            body=body,
            seconds=self._timeout if timeout is None else timeout,
            allow_redirects=allow_redirects,
            max_redirects=max_redirects,
            verify=verify,
            stream=stream,
            max_bytes=self._max_bytes if max_bytes is None else max_bytes,
        )
        seen, minted = await self._before_send()
        flow = request_flow(
            seen,
            minted,
            verb=verb,
            target=target,
            replayable=body.replayable,
            budget=RetryBudget(attempts=self.retries, max_wait=self._max_retry_wait),
        )
        answer: Any = None
        while True:
            try:
                action = flow.send(answer)
            except StopIteration as done:
                response: AsyncResponse = done.value
                return response
            answer = await self._perform(action, attempt)

    def check(self, response: AsyncResponse) -> AsyncResponse:
        """Raise a typed error for 401 and 403, ``HTTPError`` for other failures."""
        refused = refusal(response.url, response.status_code, self.credentials)
        if refused is not None:
            raise refused
        response.raise_for_status()
        return response

    def release(self) -> None:
        """The message it served ended: let go of what it holds (what is shared stays)."""
        if self._own_use:
            self._use.close()
        if self._own_pool:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing is open
                asyncio.get_running_loop().create_task(self._pool.close())

    async def close(self) -> None:
        if self._own_use:
            self._use.close()
        if self._own_pool:
            await self._pool.close()

    # --- the flow's actions, with aiohttp -------------------------------------------------

    async def _perform(self, action: Any, attempt: _Attempt) -> Any:
        if isinstance(action, Send):
            try:
                return await self._send_once(attempt, action.credentials)
            except requests.exceptions.ConnectionError as exc:
                return Failed(exc)
        if isinstance(action, Peek):
            response: AsyncResponse = action.response  # type: ignore[assignment]
            raw = await response.read(limit=attempt.max_bytes, seconds=attempt.seconds)
            return raw[:2000].decode(response.encoding or "utf-8", errors="replace")
        if isinstance(action, Discard):
            action.response.close()  # type: ignore[attr-defined]
            return None
        if isinstance(action, Pause):
            await asyncio.sleep(action.seconds)
            return None
        if isinstance(action, Refresh):
            return await self._refresh(action.seen)
        raise TypeError(f"unknown action {action!r}")

    async def _before_send(self) -> tuple[Credentials, bool]:
        current = self._use.credentials
        if current.can_refresh and current.refresh_policy == "always" and not self._always_done:
            self._always_done = True
            fresh = await self._refresh(current)
            return fresh.credentials, fresh.minted
        min_validity = self._use.due(first_of_message=False)
        if min_validity is None:
            return current, False
        fresh = await self._refresh(current, min_validity)
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
        url = attempt.url
        parts = urlsplit(url)
        headers = {**attempt.headers, **auth_headers(credentials)}
        params = _pairs(attempt.params) + list(auth_query(credentials).items())
        if params:
            url = f"{url}{'&' if parts.query else '?'}{urlencode(params)}"
        data = attempt.body.payload(headers)
        proxy = environment_proxy(parts.scheme, parts.netloc)
        try:
            async with asyncio.timeout(attempt.seconds):
                raw = await self._pool.client().request(
                    attempt.verb,
                    url,
                    data=data,
                    headers=headers,
                    allow_redirects=attempt.allow_redirects,
                    max_redirects=attempt.max_redirects,
                    ssl=_tls(attempt.verify),
                    proxy=proxy,
                )
                content = None
                if not attempt.stream:
                    content = await _read_all(raw, attempt.max_bytes, url)
        except TimeoutError:
            raise AnswerTooSlow(host_of(url), attempt.seconds) from None
        except bounded.OutOfBounds:
            raise
        except (aiohttp.ClientError, ValueError) as exc:
            raise _translated(exc, attempt.verb, url) from exc
        return AsyncResponse(raw, attempt.verb, content)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What every attempt of one request sends."""

    verb: str
    url: str
    params: Any
    headers: dict[str, str]
    body: _Body
    seconds: float
    allow_redirects: bool
    max_redirects: int
    verify: bool
    stream: bool
    max_bytes: int


class _Body:
    """A request body that can be sent again: bytes, text, a form, JSON or a seekable file
    (rewound to where it started before each attempt)."""

    def __init__(self, data: Any, json_value: Any) -> None:
        self._data = data
        self._json = json_value
        self._start = data.tell() if _seekable(data) else None

    @property
    def replayable(self) -> bool:
        data = self._data
        return (
            self._start is not None
            or data is None
            or isinstance(data, str | bytes | bytearray | Mapping | list | tuple)
        )

    def payload(self, headers: dict[str, str]) -> Any:
        data = self._data
        if self._json is not None and data is None:
            headers.setdefault("Content-Type", "application/json")
            return orjson.dumps(self._json, option=orjson.OPT_NON_STR_KEYS)
        if isinstance(data, Mapping | list | tuple):
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return urlencode(_pairs(data))
        if self._start is not None:
            data.seek(0, 2)
            size = data.tell() - self._start
            data.seek(self._start)
            headers.setdefault("Content-Length", str(size))  # sent as is, not chunked
            return _FileChunks(data, size)
        return data


class _FileChunks:
    """A file's bytes as an async iterable, read in chunks: never whole in memory."""

    def __init__(self, file: Any, size: int) -> None:
        self._file = file
        self._left = size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while self._left > 0:
            chunk = self._file.read(min(CHUNK, self._left))
            if not chunk:
                return
            self._left -= len(chunk)
            yield chunk


def _flight(slot: Slot) -> asyncio.Lock:
    """The loop's lock for a credential: its tasks refresh one at a time."""
    loop = asyncio.get_running_loop()
    flights = _FLIGHTS.setdefault(loop, weakref.WeakKeyDictionary())
    lock = flights.get(slot)
    if lock is None:
        lock = flights[slot] = asyncio.Lock()
    return lock


async def _read_all(raw: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    declared = raw.content_length
    if declared is not None and declared > limit:
        raw.close()
        raise bounded.TooLarge(
            f"the answer of {host_of(url)} is {declared:,} bytes,"
            f" more than the {limit:,} bytes allowed"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raw.close()
            raise bounded.TooLarge(
                f"the answer of {host_of(url)} is more than the {limit:,} bytes allowed"
            )
        chunks.append(chunk)
    raw.release()
    return b"".join(chunks)


def _pairs(values: Any) -> list[tuple[str, str]]:
    """Query or form values as pairs, a list repeating its name (as requests does)."""
    if not values:
        return []
    items = values.items() if isinstance(values, Mapping) else values
    return [
        (str(name), str(one))
        for name, value in items
        for one in (value if isinstance(value, list | tuple) else [value])
        if one is not None
    ]


def _seekable(data: Any) -> bool:
    seekable = getattr(data, "seekable", None)
    return callable(seekable) and bool(seekable()) and hasattr(data, "read")


@functools.lru_cache(maxsize=4)
def _context(bundle: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=bundle)


def _tls(verify: bool) -> ssl.SSLContext | bool:
    return _context(ca_bundle()) if verify else False


def _translated(error: BaseException, verb: str, url: str) -> requests.RequestException:
    """An aiohttp failure as the requests exception a sync step would have seen."""
    request = requests.Request(verb, url)
    text = f"{verb} {host_of(url)}: {error}"
    if isinstance(error, aiohttp.ClientSSLError):
        return requests.exceptions.SSLError(text, request=request)
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return requests.exceptions.ConnectTimeout(text, request=request)
    if isinstance(error, aiohttp.ServerTimeoutError):
        return requests.exceptions.ReadTimeout(text, request=request)
    if isinstance(error, aiohttp.TooManyRedirects):
        return requests.TooManyRedirects(text, request=request)
    if isinstance(error, aiohttp.InvalidURL):
        return requests.exceptions.InvalidURL(text, request=request)
    if isinstance(error, ValueError):
        return requests.exceptions.InvalidHeader(text, request=request)
    return requests.exceptions.ConnectionError(text, request=request)
