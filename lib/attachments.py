"""Files in and out of the platform's attachment storage, on disk in between.

Uploads read a file from a URL (the platform's attachment storage, or any other) into a
temporary file; downloads stream an API's answer into one and store it as an attachment.
Never more than a chunk is in memory, and every copy stops at its size limit.

The storage is the one the worker is given (``ELASTICIO_OBJECT_STORAGE_URI`` and its
token, which is sent only to that storage, never to other hosts); the local platform's
object store plays that part locally.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO, Any

import requests

from lib.http import kind_of
from lib.http import where as shown
from runtime import (
    ObjectStorage,
    ObjectStorageError,
    StepError,
    attachment_storage,
    bounded,
    describe_failure,
)

SPOOL_BYTES = 1024 * 1024
"""Files up to this size stay in memory; larger ones go to a temporary file."""
FETCH_SECONDS = 300.0


class AttachmentError(StepError):
    """An attachment could not be read from its URL or stored."""


@dataclass
class Spooled:
    file: IO[bytes]
    size: int
    content_type: str

    def close(self) -> None:
        self.file.close()


def storage() -> ObjectStorage:
    return attachment_storage()


def new_spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


def fetch(url: Any, *, limit: int, message_id: str = "", timeout: float = 60.0) -> Spooled:
    """The file at ``url``, read into a temporary file of at most ``limit`` bytes.

    Raises:
        AttachmentError: not a URL, not found, unreachable, or larger than ``limit``.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise AttachmentError(
            f"the file to upload must be given as an http(s) URL (an attachment's 'url'), "
            f"not {kind_of(url) if not isinstance(url, str) else repr(url[:80])}"
        )
    where = f"the file at {shown(url)}"
    store = storage()
    try:
        if store.holds(url):
            response = store.open(url, message_id)
        else:
            response = requests.get(url, stream=True, timeout=timeout)
    except ObjectStorageError as exc:
        raise AttachmentError(f"could not read {where}: {exc}") from None
    except requests.RequestException as exc:
        raise AttachmentError(f"could not read {where}: {describe_failure(exc)}") from None
    if response.status_code >= 400:
        response.close()
        raise AttachmentError(
            f"could not read {where}: it answered {response.status_code} "
            f"{response.reason or ''}".rstrip()
        )
    spool = new_spool()
    try:
        size = bounded.copy(response, spool, what=where, limit=limit, seconds=FETCH_SECONDS)
    except bounded.OutOfBounds as exc:
        spool.close()
        raise AttachmentError(str(exc)) from None
    spool.seek(0)
    kind = response.headers.get("Content-Type") or "application/octet-stream"
    return Spooled(spool, size, kind)


def store(spooled: Spooled, *, message_id: str = "") -> str:
    """Store a spooled file as an attachment; the URL it is read from."""
    target = storage()
    if not target.configured:
        raise AttachmentError(
            "the response should be stored as an attachment, but no attachment storage is "
            "configured (ELASTICIO_OBJECT_STORAGE_URI); run the step on the platform or the "
            "local platform, or turn off 'downloadAsAttachment'"
        )
    spooled.file.seek(0)
    try:
        object_id = target.store(spooled.file, message_id, spooled.content_type)
    except ObjectStorageError as exc:
        raise AttachmentError(f"could not store the attachment: {exc}") from None
    return target.url_of(object_id)
