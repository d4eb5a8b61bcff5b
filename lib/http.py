"""What the connector's steps share about HTTP: bounded reads, responses as messages."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import requests

from runtime import Context, StepError, bounded

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
READ_SECONDS = 300.0
_TEXT_TYPES = ("text/", "application/xml", "application/javascript", "+xml")


class HttpStatusError(StepError):
    """The API answered with a status the step does not pass on."""

    def __init__(self, response: requests.Response, snippet: str) -> None:
        where = urlsplit(response.url)
        super().__init__(
            f"{response.request.method} {where.path or '/'} answered {response.status_code} "
            f"{response.reason or ''}".rstrip()
            + (f": {snippet}" if snippet else "")
        )
        self.status = response.status_code


class ResponseTooLarge(StepError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the response is larger than {limit} bytes; raise the step's 'maxResponseBytes' "
            "or ask the API for less (paging, fields)"
        )


def read_limited(response: requests.Response, limit: int, seconds: float = READ_SECONDS) -> bytes:
    """The whole body, refusing to hold more than ``limit`` bytes or to wait past ``seconds``."""
    try:
        return bounded.read(response, what="the response", limit=limit, seconds=seconds)
    except bounded.TooLarge:
        raise ResponseTooLarge(limit) from None
    except bounded.OutOfBounds as exc:
        raise StepError(f"{exc}; the API may be overloaded, try again later") from None


def parse_body(response: requests.Response, raw: bytes) -> tuple[Any, str | None]:
    """The body as JSON, text, or base64 for binary content; and the encoding used."""
    kind = response.headers.get("Content-Type", "").lower()
    if not raw:
        return None, None
    if "json" in kind:
        try:
            return bounded.loads(raw, what="the response"), None
        except bounded.TooDeep as exc:
            raise StepError(str(exc)) from None
        except bounded.OutOfBounds:
            pass
    if any(t in kind for t in _TEXT_TYPES) or "json" in kind or not kind:
        try:
            return raw.decode(response.encoding or "utf-8"), None
        except (UnicodeDecodeError, LookupError):
            pass
    return base64.b64encode(raw).decode(), "base64"


def as_message(response: requests.Response, raw: bytes) -> dict[str, Any]:
    body, encoding = parse_body(response, raw)
    data: dict[str, Any] = {
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "body": body,
    }
    if encoding:
        data["bodyEncoding"] = encoding
    return data


def snippet(raw: bytes, size: int = 300) -> str:
    text = raw[:size].decode("utf-8", errors="replace").strip()
    return text + ("…" if len(raw) > size else "")


def tenant_header(ctx: Context, tenant: str | None) -> dict[str, str]:
    """The provider's tenant header (Xero-Tenant-Id) for a tenant chosen in the step."""
    if not tenant:
        return {}
    profile = ctx.http.credentials.profile
    names = list(profile.header_fields) if profile is not None and profile.header_fields else []
    return {names[0] if names else "X-Tenant-Id": tenant}
