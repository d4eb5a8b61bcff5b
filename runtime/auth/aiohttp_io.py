"""The aiohttp side of the async session: its connections, request bodies, reading an
answer within bounds, and aiohttp's failures as the requests exceptions steps know."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import requests

from runtime import bounded
from runtime.auth.environment import ca_bundle
from runtime.auth.session_core import seekable
from runtime.network import host_of

MAX_BYTES = 100 * 1024 * 1024
"""Bytes an answer read whole may have: a bound on memory, not on a real API."""
CHUNK = 64 * 1024


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


class Body:
    """A request body that can be sent again: bytes, text, a form, JSON or a seekable file
    (rewound to where it started before each attempt)."""

    def __init__(self, data: Any, json_value: Any) -> None:
        self._data = data
        self._json = json_value
        self._start = data.tell() if seekable(data) else None

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
        if data is None:
            if self._json is None:
                return None
            headers.setdefault("Content-Type", "application/json")
            return orjson.dumps(self._json, option=orjson.OPT_NON_STR_KEYS)
        if isinstance(data, Mapping | list | tuple):
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return urlencode(pairs(data))
        if self._start is not None:
            data.seek(0, 2)
            size = data.tell() - self._start
            data.seek(self._start)
            headers.setdefault("Content-Length", str(size))  # sent as is, not chunked
            return FileChunks(data, size)
        return data


class FileChunks:
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


async def read_all(raw: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    declared = raw.content_length
    if declared is not None and declared > limit:
        raw.close()
        raise bounded.TooLarge(
            f"the answer of {host_of(url)} is {declared:,} bytes,"
            f" more than the {limit:,} bytes allowed"
        )
    if declared is not None:  # aiohttp reads exactly what was declared, and no more
        return await raw.read()
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


def pairs(values: Any) -> list[tuple[str, str]]:
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


@functools.lru_cache(maxsize=4)
def _context(bundle: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=bundle)


def tls(verify: bool) -> ssl.SSLContext | bool:
    return _context(ca_bundle()) if verify else False


# aiohttp's failures, most specific first, as the requests exception a sync step would see.
_AS_REQUESTS: tuple[tuple[type[BaseException], type[requests.RequestException]], ...] = (
    (aiohttp.ClientSSLError, requests.exceptions.SSLError),
    (aiohttp.ConnectionTimeoutError, requests.exceptions.ConnectTimeout),
    (aiohttp.ServerTimeoutError, requests.exceptions.ReadTimeout),
    (aiohttp.TooManyRedirects, requests.TooManyRedirects),
    (aiohttp.InvalidURL, requests.exceptions.InvalidURL),
    (ValueError, requests.exceptions.InvalidHeader),
)


def translated(error: BaseException, verb: str, url: str) -> requests.RequestException:
    """An aiohttp failure as the requests exception a sync step would have seen."""
    kind = next(
        (ours for theirs, ours in _AS_REQUESTS if isinstance(error, theirs)),
        requests.exceptions.ConnectionError,
    )
    return kind(f"{verb} {host_of(url)}: {error}", request=requests.Request(verb, url))
