"""What the connector's steps share about HTTP: bounded reads, responses as messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from runtime import AsyncContext, AsyncResponse, Context, StepError, bounded, host_of

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
READ_SECONDS = 300.0


class HttpStatusError(StepError):
    """The API answered with a status the step does not pass on."""

    def __init__(self, response: AsyncResponse, snippet: str) -> None:
        super().__init__(
            f"{response.request.method} {where(response.url) or '/'} answered "
            f"{response.status_code} {response.reason or ''}".rstrip()
            + (f": {snippet}" if snippet else "")
        )
        self.status = response.status_code


class ResponseTooLarge(StepError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the response is larger than {limit:,} bytes; raise the step's 'maxContentLength' "
            "or ask the API for less (paging, fields)"
        )


async def read_limited(response: AsyncResponse, limit: int, seconds: float = READ_SECONDS) -> bytes:
    """The whole body, refusing to hold more than ``limit`` bytes or to wait past ``seconds``
    (in all, however slowly the server sends it)."""
    try:
        return await response.read(limit=limit, seconds=seconds)
    except bounded.TooLarge:
        raise ResponseTooLarge(limit) from None
    except bounded.OutOfBounds as exc:
        raise StepError(f"{exc}; the API may be overloaded, try again later") from None


def answer_of(response: AsyncResponse) -> str:
    """How errors name a response: by its server."""
    return f"the answer of {host_of(response.url)}" if response.url else "the answer"


def snippet(raw: bytes, size: int = 300) -> str:
    text = raw[:size].decode("utf-8", errors="replace").strip()
    return text + ("…" if len(raw) > size else "")


def tenant_header(ctx: Context | AsyncContext, tenant: str | None) -> dict[str, str]:
    """The provider's tenant header (Xero-Tenant-Id) for a tenant chosen in the step."""
    if not tenant:
        return {}
    profile = ctx.http.credentials.profile
    names = list(profile.header_fields) if profile is not None and profile.header_fields else []
    return {names[0] if names else "X-Tenant-Id": tenant}


def where(url: str) -> str:
    """A URL as errors show it: host and path (a query may hold an API key, user info a
    password)."""
    parts = urlsplit(url)
    return f"{host_of(url)}{parts.path}" if parts.scheme else parts.path


def kind_of(value: Any) -> str:
    """What a value is, for an error that must not show it."""
    return "nothing" if value is None else f"a {type(value).__name__}"
