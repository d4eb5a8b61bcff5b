"""Request bodies by content type: JSON, forms, multipart, text, XML, HTML and files.

``bodyType`` takes the content type (``application/json``, ``multipart/form-data``...) or
the short names older configurations use (``json``, ``form``, ``none``). With
``uploadFile``, an ``application/octet-stream`` body is the URL of a file to send, and a
multipart part given as ``{"url": ..., "filename"?: ..., "knownLength"?: ...}`` is that
file. Files and multipart bodies are spooled to disk, never held whole in memory, and sent
from there (so a request refused with 401 can be sent again after a token refresh).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import xmltodict
from urllib3.fields import RequestField
from urllib3.filepost import choose_boundary

from lib import attachments
from lib.attachments import Spooled
from runtime import InvalidInput

CONTENT_TYPES = {
    "application/json": "application/json",
    "json": "application/json",
    "application/x-www-form-urlencoded": "application/x-www-form-urlencoded",
    "form": "application/x-www-form-urlencoded",
    "multipart/form-data": "multipart/form-data",
    "multipart": "multipart/form-data",
    "text/plain": "text/plain",
    "text": "text/plain",
    "application/xml": "application/xml",
    "xml": "application/xml",
    "text/xml": "text/xml",
    "text/html": "text/html",
    "html": "text/html",
    "application/octet-stream": "application/octet-stream",
    "octet-stream": "application/octet-stream",
    "none": "",
}
TEXT_TYPES = frozenset({"text/plain", "text/html"})
XML_TYPES = frozenset({"application/xml", "text/xml"})
FROM_MESSAGE = frozenset(
    {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
)
"""Types whose empty body field sends the incoming message's body."""


@dataclass
class Body:
    """What to pass to ``requests`` for the body, and the files to close afterwards."""

    data: Any = None
    content_type: str = ""
    size: int = 0
    spools: list[Spooled] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Optional file parts left out because their file could not be read: name, why."""

    def close(self) -> None:
        for spool in self.spools:
            spool.close()


@dataclass(frozen=True)
class OptionalFile:
    """A multipart file part sent only if its file can be read (the platform's older steps
    add the message's attachments so, and leave out the ones they cannot fetch)."""

    url: str
    filename: str


def json_text(value: Any) -> str:
    """JSON as ``JSON.stringify`` writes it (no spaces), as the platform's steps send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def content_type_of(configured: str) -> str:
    kind = CONTENT_TYPES.get(configured.strip().lower() or "json")
    if kind is None:
        known = ", ".join(k for k in CONTENT_TYPES if "/" in k)
        raise InvalidInput(f"bodyType {configured!r} is not a content type we send; use {known}")
    return kind


def encode(
    kind: str,
    value: Any,
    *,
    upload_file: bool,
    file_limit: int,
    message_id: str = "",
) -> Body:
    """The body to send for a content type (see ``content_type_of``) and a field's value
    (nothing, as an expression giving nothing, sends no body)."""
    if kind == "" or value is None:
        return Body()
    if kind == "application/json":
        return _bytes(json_text(value).encode(), kind)
    if kind == "application/x-www-form-urlencoded":
        pairs = [(name, _as_text(v)) for name, v in _fields(value, kind)]
        return _bytes(urlencode(pairs).encode(), kind)
    if kind == "multipart/form-data":
        return _multipart(value, upload_file=upload_file, limit=file_limit, message_id=message_id)
    if kind == "application/octet-stream":
        if upload_file:
            spooled = attachments.fetch(value, limit=file_limit, message_id=message_id)
            return Body(spooled.file, kind, spooled.size, [spooled])
        return _bytes(value if isinstance(value, bytes) else _as_text(value).encode(), kind)
    if kind in XML_TYPES:
        return _bytes(_xml(value).encode(), f"{kind}; charset=utf-8")
    return _bytes(_as_text(value).encode(), f"{kind}; charset=utf-8")


def _bytes(data: bytes, kind: str) -> Body:
    return Body(data, kind, len(data))


def _fields(value: Any, kind: str) -> list[tuple[str, Any]]:
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"a {kind} body must be an object of fields (name: value), not {type(value).__name__}"
        )
    pairs: list[tuple[str, Any]] = []
    for name, item in value.items():
        items = item if isinstance(item, list) else [item]
        pairs.extend((str(name), each) for each in items)  # a list repeats the field
    return pairs


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json_text(value)


def _xml(value: Any) -> str:
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise InvalidInput(
                "an XML body given as an object needs exactly one key, the root element; "
                f"this one has {len(value)}"
            )
        try:
            return str(xmltodict.unparse(value))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the object cannot be written as XML: {exc}") from None
    text = _as_text(value)
    try:
        xmltodict.parse(text, disable_entities=True)
    except Exception as exc:  # noqa: BLE001 - expat raises its own error types
        raise InvalidInput(
            f"the body is sent as XML but is not well-formed XML ({exc}); check the body field "
            "or choose another content type"
        ) from None
    return text


def _multipart(value: Any, *, upload_file: bool, limit: int, message_id: str) -> Body:
    boundary = choose_boundary()
    out = attachments.new_spool()
    body = Body(out, f"multipart/form-data; boundary={boundary}")
    try:
        for name, item in _fields(value, "multipart/form-data"):
            if isinstance(item, OptionalFile):
                try:
                    spooled = attachments.fetch(item.url, limit=limit, message_id=message_id)
                except attachments.AttachmentError as exc:
                    body.skipped.append((name, str(exc)))
                    continue
                _file_part(out, boundary, name, spooled, item.filename)
            elif upload_file and isinstance(item, Mapping) and item.get("url"):
                spooled = attachments.fetch(item["url"], limit=limit, message_id=message_id)
                body.spools.append(spooled)
                filename = str(item.get("filename") or _name_in(item["url"]))
                _file_part(out, boundary, name, spooled, filename)
            else:
                out.write(f"--{boundary}\r\n".encode())
                part = RequestField(name, b"")
                part.make_multipart()
                out.write(part.render_headers().encode())
                out.write(_as_text(item).encode())
                out.write(b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
    except BaseException:
        out.close()
        body.close()
        raise
    body.size = out.tell()
    out.seek(0)
    body.spools.append(Spooled(out, body.size, body.content_type))
    return body


def _file_part(out: Any, boundary: str, name: str, spooled: Spooled, filename: str) -> None:
    """A file's part, copied from its spool (closed after)."""
    out.write(f"--{boundary}\r\n".encode())
    part = RequestField(name, b"", filename=filename)
    part.make_multipart(content_type=spooled.content_type)
    out.write(part.render_headers().encode())
    shutil.copyfileobj(spooled.file, out)
    spooled.close()
    out.write(b"\r\n")


def _name_in(url: str) -> str:
    path = url.split("?", 1)[0].rstrip("/")
    name = path.rsplit("/", 1)[-1]
    return name or "file"
