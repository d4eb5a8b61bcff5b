"""What the connector's steps share about HTTP: bounded reads, responses as messages."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import requests

from runtime import StepError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
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


def read_limited(response: requests.Response, limit: int) -> bytes:
    """The whole body, read in chunks, refusing to hold more than ``limit`` bytes."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        response.close()
        raise ResponseTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > limit:
            response.close()
            raise ResponseTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(response: requests.Response, raw: bytes) -> tuple[Any, str | None]:
    """The body as JSON, text, or base64 for binary content; and the encoding used."""
    kind = response.headers.get("Content-Type", "").lower()
    if not raw:
        return None, None
    if "json" in kind:
        try:
            return json.loads(raw), None
        except ValueError:
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


def tenant_header(ctx: Any, tenant: str | None) -> dict[str, str]:
    """The provider's tenant header (Xero-Tenant-Id) for a tenant chosen in the step."""
    if not tenant:
        return {}
    profile = getattr(getattr(ctx.http, "credentials", None), "profile", None)
    names = list(profile.header_fields) if profile is not None and profile.header_fields else []
    return {names[0] if names else "X-Tenant-Id": tenant}
