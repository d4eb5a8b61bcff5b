"""An async session's answer, read as requests' ``Response`` is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import requests

from runtime import bounded
from runtime.auth.aiohttp_io import CHUNK, MAX_BYTES, read_all, translated
from runtime.auth.session_core import DEFAULT_TIMEOUT
from runtime.network import AnswerOf, host_of


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
        return bounded.loads(self.content, what=AnswerOf(self.url))

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
                    self._content = await read_all(self._raw, limit, self.url)
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
            raise translated(exc, self.request.method, self.url) from exc
        finally:
            self._raw.release()

    def close(self) -> None:
        self._raw.close()
