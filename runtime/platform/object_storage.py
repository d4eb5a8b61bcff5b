"""The platform's object storage (maester): stored objects in, their bytes out.

What is in the objects (message bodies, encrypted with the flow's key) is the worker's
business (runtime.worker.lightweight); this is only the HTTP client.

``POST {uri}/objects`` answers ``{"objectId": ...}``; ``GET {uri}/objects/{id}``; both with
``Authorization: Bearer {ELASTICIO_OBJECT_STORAGE_TOKEN}``. Failures to connect are retried
with exponential back-off (100 ms doubling, at most 15 s), server errors only for ``GET``:
a ``POST`` sent again after its answer was lost would store the body twice. Bodies are read
within bounds (``OBJECT_LIMIT`` bytes, a deadline, nesting), so a store answering garbage is
a clear error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO
from urllib.parse import quote

import requests

from runtime import bounded
from runtime.deadlines import deadline
from runtime.errors import StepError
from runtime.network import describe_failure, host_of
from runtime.platform.sessions import platform_session
from runtime.redact import SECRETS

OBJECT_ID_HEADER = "x-ipaas-object-storage-id"
TIMEOUT = 30.0
"""Seconds per socket read."""
CALL_SECONDS = 120.0
"""Seconds a request may take until its answer's headers, retries and sending included;
reading a body has a bound of its own."""
RETRIES = 3
OBJECT_LIMIT = 100 * 1024 * 1024
"""Bytes one stored body may have (lightweight messages exist for large ones)."""


class ObjectStorageError(StepError):
    """A lightweight message's body could not be fetched or stored."""


class ObjectStorage:
    def __init__(
        self,
        uri: str | None,
        token: str | None,
        *,
        flow_id: str,
        step_id: str,
    ) -> None:
        self._uri = (uri or "").rstrip("/")
        self._host = host_of(self._uri)
        self._http = platform_session(attempts=RETRIES + 1, first_delay=0.1)
        if token:
            SECRETS.pin(token)
            self._http.headers["Authorization"] = f"Bearer {token}"
        self._request_id = f"f:{flow_id};s:{step_id}"

    @property
    def configured(self) -> bool:
        return bool(self._uri)

    def fetch(self, object_id: str, message_id: str = "") -> bytes:
        """The stored bytes of an object.

        Raises:
            ObjectStorageError: no storage configured, not found, too large, or unreachable.
        """
        response = self._request("GET", f"/objects/{quote(object_id)}", message_id)
        what = f"object {object_id} from object storage at {self._host}"
        try:
            return bounded.read(response, what=what, limit=OBJECT_LIMIT, seconds=TIMEOUT * 4)
        except bounded.OutOfBounds as exc:
            raise ObjectStorageError(str(exc)) from None

    def describe(self, object_id: str) -> str:
        return f"object {object_id} from object storage at {self._host}"

    def store(self, data: bytes | IO[bytes], message_id: str = "", content_type: str = "") -> str:
        """Store bytes, or a file streamed from where it stands; the new object's id."""
        response = self._request("POST", "/objects", message_id, data, content_type)
        what = f"the answer of object storage at {self._host} to a new object"
        try:
            answer = bounded.loads(
                bounded.read(response, what=what, limit=64 * 1024, seconds=TIMEOUT), what=what
            )
            return str(answer["objectId"])
        except (bounded.OutOfBounds, KeyError, TypeError):
            raise ObjectStorageError(f"{what} has no objectId") from None

    def url_of(self, object_id: str) -> str:
        """Where an attachment stored here is read from, in the form the platform uses."""
        return f"{self._uri}/objects/{quote(object_id)}?storage_type=maester"

    def holds(self, url: str) -> bool:
        """Whether a URL points into this storage (and so needs its token)."""
        return bool(self._uri) and (url == self._uri or url.startswith(self._uri + "/"))

    def open(self, url: str, message_id: str = "") -> requests.Response:
        """A stored object's answer, streamed (``url`` as ``url_of`` gives it)."""
        return self._request("GET", url[len(self._uri) :], message_id)

    def _request(
        self,
        method: str,
        path: str,
        message_id: str,
        body: bytes | IO[bytes] | None = None,
        content_type: str = "",
    ) -> requests.Response:
        if not self._uri:
            raise ObjectStorageError(
                f"the message body is in object storage ({OBJECT_ID_HEADER}) but "
                "ELASTICIO_OBJECT_STORAGE_URI is not set"
            )
        headers = {"x-request-id": f"{self._request_id};m:{message_id}"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"

        def too_slow() -> ObjectStorageError:
            return ObjectStorageError(
                f"object storage at {self._host} did not answer {method} {path} within "
                f"{CALL_SECONDS:g} s (too slow)"
            )

        try:
            with deadline(CALL_SECONDS, too_slow=too_slow):
                response = self._http.request(
                    method, self._uri + path, data=body, headers=headers, timeout=TIMEOUT,
                    stream=True,
                )  # fmt: skip
        except requests.RequestException as exc:
            raise ObjectStorageError(
                f"object storage at {self._host} did not answer {method} {path} "
                f"({describe_failure(exc)})"
            ) from None
        if response.status_code >= 400:
            response.close()
            raise ObjectStorageError(
                f"object storage at {self._host} refused {method} {path} ({response.status_code})"
            )
        return response


def attachment_storage(env: Mapping[str, str] | None = None) -> ObjectStorage:
    """The attachment storage the platform gives this worker (``ELASTICIO_OBJECT_STORAGE_URI``
    and its token), for steps that read or store files; ``configured`` is False outside it."""
    env = os.environ if env is None else env
    return ObjectStorage(
        env.get("ELASTICIO_OBJECT_STORAGE_URI"),
        env.get("ELASTICIO_OBJECT_STORAGE_TOKEN"),
        flow_id=env.get("ELASTICIO_FLOW_ID", ""),
        step_id=env.get("ELASTICIO_STEP_ID", ""),
    )
