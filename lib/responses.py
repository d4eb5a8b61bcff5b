"""An API's answer as the message the step emits, shaped as the platform's REST component does.

``{statusCode, statusMessage, headers, body}``: header names in lower case (as Node.js gives
them), a header sent more than once (``set-cookie`` always) as a list. The body by content
type: JSON parsed; XML turned into JSON (attributes under ``_attr``, an element's text beside
attributes under ``_``, ``ns:tag`` as ``ns-tag``); binary types as base64 with
``bodyEncoding: "base64"``; anything else as text; no content type: JSON if it parses, else
text; an empty answer has no ``body``. ``responseEncoding: base64`` gives every body as
base64. With ``downloadAsAttachment`` the answer is streamed to attachment storage and the
message carries it under ``attachments`` instead of a ``body``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import xmltodict

from lib import attachments
from lib.attachments import Spooled
from lib.http import answer_of, read_limited
from lib.options import Options
from runtime import AsyncResponse, StepError, bounded

BINARY_MARKERS = (
    "image/", "audio/", "video/", "pdf", "msword", "msexcel", "ms-excel", "officedocument",
    "octet-stream", "binary", "zip", "gzip", "protobuf",
)  # fmt: skip
_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def headers_of(response: AsyncResponse) -> dict[str, str | list[str]]:
    result: dict[str, str | list[str]] = {}
    for name in dict.fromkeys(response.headers):  # a repeated name is listed once per value
        key = name.lower()
        values = list(response.headers.getall(name))
        result[key] = values if len(values) > 1 or key == "set-cookie" else values[0]
    return result


def status_of(response: AsyncResponse) -> dict[str, Any]:
    return {
        "statusCode": response.status_code,
        "statusMessage": response.reason or "",
        "headers": headers_of(response),
    }


async def output(
    response: AsyncResponse,
    options: Options,
    incoming_attachments: dict[str, Any],
    message_id: str = "",
) -> dict[str, Any]:
    """The data message for a response (reads and closes it)."""
    data = status_of(response)
    message: dict[str, Any] = {"body": data, "attachments": dict(incoming_attachments)}
    if options.download_attachment:
        name, entry = await store_answer(response, options.response_limit, message_id)
        message["attachments"][name] = entry
        return message
    raw = await read_limited(response, options.response_limit, seconds=options.timeout * 3)
    if raw:
        body, encoding = parse(response, raw, options.encoding)
        data["body"] = body
        if encoding:
            data["bodyEncoding"] = encoding
    return message


def parse(response: AsyncResponse, raw: bytes, encoding: str = "utf8") -> tuple[Any, str]:
    """The body, and ``"base64"`` when it is given in base64."""
    if encoding == "base64":
        return base64.b64encode(raw).decode(), "base64"
    kind = response.headers.get("Content-Type", "").lower()
    if "json" in kind or not kind:
        try:
            return bounded.loads(raw, what="the response"), ""
        except bounded.TooDeep as exc:
            raise StepError(str(exc)) from None
        except bounded.OutOfBounds:
            pass
    if "xml" in kind:
        converted = parse_xml(raw)
        if converted is not None:
            return converted, ""
    if any(marker in kind for marker in BINARY_MARKERS):
        return base64.b64encode(raw).decode(), "base64"
    try:
        return raw.decode(response.encoding or "utf-8"), ""
    except (UnicodeDecodeError, LookupError):
        return base64.b64encode(raw).decode(), "base64"


def parse_xml(raw: bytes) -> Any:
    """XML as JSON (see the module's docstring); None when it is not well-formed."""
    try:
        parsed = xmltodict.parse(raw, disable_entities=True, attr_prefix="@", cdata_key="#text")
    except Exception:  # noqa: BLE001 - not XML after all: the caller gives it as text
        return None
    return _reshape(parsed)


def _reshape(value: Any) -> Any:
    if isinstance(value, list):
        return [_reshape(v) for v in value]
    if not isinstance(value, dict):
        return value
    shaped: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, item in value.items():
        if key.startswith("@"):
            attributes[key[1:]] = item
        elif key == "#text":
            shaped["_"] = item
        else:
            shaped[key.replace(":", "-")] = _reshape(item)
    if attributes:
        shaped["_attr"] = attributes
    return shaped


async def store_answer(
    response: AsyncResponse, limit: int, message_id: str
) -> tuple[str, dict[str, Any]]:
    """Stream the answer to attachment storage (reads, closes): its name and its entry in a
    message's ``attachments`` (url, size, content-type, sourceUrl)."""
    spool = attachments.new_spool()
    kind = response.headers.get("Content-Type") or "application/octet-stream"
    what = answer_of(response)
    try:
        size = await _copy(response, spool, what=what, limit=limit)
    except bounded.TooLarge as exc:
        spool.close()
        raise StepError(
            f"{exc}; raise the step's 'maxContentLength' (at most 100 MB as an attachment)"
        ) from None
    except bounded.OutOfBounds as exc:
        spool.close()
        raise StepError(str(exc)) from None
    spooled = Spooled(spool, size, kind)
    try:
        # Storing blocks (a streamed upload): off the event loop.
        url = await asyncio.to_thread(attachments.store, spooled, message_id=message_id)
    finally:
        spooled.close()
    source = urlsplit(response.url)
    # The query may carry an API key: the source is named by host and path only.
    entry = {
        "url": url,
        "size": size,
        "content-type": kind,
        "sourceUrl": f"{source.scheme}://{source.netloc}{source.path}",
    }
    return _file_name(response), entry


async def _copy(response: AsyncResponse, into: Any, *, what: str, limit: int) -> int:
    """The answer's body into a file, a chunk at a time, within ``limit`` and its deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise bounded.TooLarge(
            f"{what} is {int(declared):,} bytes, more than the {limit:,} bytes allowed"
        )
    size = 0
    seconds = attachments.FETCH_SECONDS
    try:
        async with asyncio.timeout(seconds):
            async for chunk in response.iter_chunks():
                size += len(chunk)
                if size > limit:
                    raise bounded.TooLarge(f"{what} is more than the {limit:,} bytes allowed")
                into.write(chunk)
    except TimeoutError:
        raise bounded.TooSlow(
            f"{what} did not finish within {seconds:g} s: the server is too slow"
        ) from None
    except requests.RequestException as exc:
        raise bounded.TooSlow(f"{what} broke off ({type(exc).__name__})") from None
    finally:
        response.close()
    return size


def _file_name(response: AsyncResponse) -> str:
    found = _FILENAME.search(response.headers.get("Content-Disposition", ""))
    if found:
        return unquote(found.group(1)).strip() or "response"
    name = urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1]
    return unquote(name) if name and "." in name else f"response-{uuid.uuid4().hex[:12]}"
