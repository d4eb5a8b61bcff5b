"""Lightweight messages: bodies kept in the platform's object storage (maester).

A message whose ``headers`` carry ``x-ipaas-object-storage-id`` has its real body in object
storage, encrypted with the flow's key and IV (raw bytes, not base64). Before a step runs,
such bodies (the message's and its passthrough's) are fetched, unless the step says
``autoResolveObjectReferences: false``; with ``ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE`` large
outgoing bodies are stored and replaced by ``{}`` and the header, as the Node.js sailor does.

``POST {uri}/objects`` answers ``{"objectId": ...}``; ``GET {uri}/objects/{id}``; both with
``Authorization: Bearer {ELASTICIO_OBJECT_STORAGE_TOKEN}``. Failures to connect are retried
with exponential back-off (100 ms doubling, at most 15 s), server errors only for ``GET``:
a ``POST`` sent again after its answer was lost would store the body twice. Bodies are read
within bounds (``OBJECT_LIMIT`` bytes, a deadline, nesting), so a store answering garbage is
a clear error naming it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from runtime import bounded
from runtime.crypto import CipherError, MessageCipher
from runtime.errors import StepError
from runtime.http_retry import describe_failure, host_of, platform_session
from runtime.redact import SECRETS
from runtime.wire import dumps

OBJECT_ID_HEADER = "x-ipaas-object-storage-id"
TIMEOUT = 30.0
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
        cipher: MessageCipher,
        *,
        flow_id: str,
        step_id: str,
    ) -> None:
        self._uri = (uri or "").rstrip("/")
        self._host = host_of(self._uri)
        self._cipher = cipher
        self._http = platform_session(attempts=RETRIES + 1, first_delay=0.1)
        if token:
            SECRETS.pin(token)
            self._http.headers["Authorization"] = f"Bearer {token}"
        self._request_id = f"f:{flow_id};s:{step_id}"

    @property
    def configured(self) -> bool:
        return bool(self._uri)

    def get(self, object_id: str, message_id: str = "") -> Any:
        """The stored value of an object.

        Raises:
            ObjectStorageError: no storage configured, not found, unreadable, or unreachable.
        """
        response = self._request("GET", f"/objects/{quote(object_id)}", message_id)
        what = f"object {object_id} from object storage at {self._host}"
        try:
            raw = bounded.read(response, what=what, limit=OBJECT_LIMIT, seconds=TIMEOUT * 4)
            return bounded.loads(self._cipher.decrypt(raw), what=what)
        except CipherError:
            raise ObjectStorageError(f"{what} is not a message body of this flow") from None
        except bounded.OutOfBounds as exc:
            raise ObjectStorageError(str(exc)) from None

    def put(self, value: Any, message_id: str = "") -> str:
        """Store a value; its object id."""
        response = self._request("POST", "/objects", message_id, self._cipher.encrypt(dumps(value)))
        what = f"the answer of object storage at {self._host} to a new object"
        try:
            answer = bounded.loads(
                bounded.read(response, what=what, limit=64 * 1024, seconds=TIMEOUT), what=what
            )
            return str(answer["objectId"])
        except (bounded.OutOfBounds, KeyError, TypeError):
            raise ObjectStorageError(f"{what} has no objectId") from None

    def _request(
        self, method: str, path: str, message_id: str, body: bytes | None = None
    ) -> requests.Response:
        if not self._uri:
            raise ObjectStorageError(
                f"the message body is in object storage ({OBJECT_ID_HEADER}) but "
                "ELASTICIO_OBJECT_STORAGE_URI is not set"
            )
        headers = {"x-request-id": f"{self._request_id};m:{message_id}"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            response = self._http.request(
                method, self._uri + path, data=body, headers=headers, timeout=TIMEOUT, stream=True
            )
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


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def references_objects(message: dict[str, Any]) -> bool:
    """Whether the message or its passthrough keeps a body in object storage."""
    entries = [message, *_as_dict(message.get("passthrough")).values()]
    return any(_as_dict(_as_dict(e).get("headers")).get(OBJECT_ID_HEADER) for e in entries)


def resolve(storage: ObjectStorage, message: dict[str, Any], message_id: str) -> None:
    """Fetch the bodies a message and its passthrough keep in object storage, in place."""
    _resolve_one(storage, message, message_id)
    passthrough = message.get("passthrough")
    if isinstance(passthrough, dict):
        for entry in passthrough.values():
            if isinstance(entry, dict):
                _resolve_one(storage, entry, message_id)


def _resolve_one(storage: ObjectStorage, entry: dict[str, Any], message_id: str) -> None:
    headers = entry.get("headers")
    if isinstance(headers, dict) and headers.get(OBJECT_ID_HEADER):
        entry["body"] = storage.get(str(headers[OBJECT_ID_HEADER]), message_id)


def offload(
    storage: ObjectStorage, data: dict[str, Any], threshold: int, message_id: str
) -> dict[str, Any]:
    """A data message with its large bodies stored and replaced by ``{}`` and the header."""
    passthrough = _as_dict(data.get("passthrough"))
    sizes = len(dumps(data.get("body"))) + sum(
        len(dumps(entry.get("body"))) for entry in passthrough.values() if isinstance(entry, dict)
    )
    if sizes <= threshold:
        return data
    stored = {**data, "headers": {**(data.get("headers") or {}),
                                  OBJECT_ID_HEADER: storage.put(data.get("body"), message_id)},
              "body": {}}  # fmt: skip
    if passthrough:
        stored["passthrough"] = {
            step: _offloaded(storage, entry, message_id) for step, entry in passthrough.items()
        }
    return stored


def _offloaded(storage: ObjectStorage, entry: Any, message_id: str) -> Any:
    if not isinstance(entry, dict):
        return entry
    headers = _as_dict(entry.get("headers"))
    if headers.get(OBJECT_ID_HEADER):
        return {**entry, "body": {}}
    object_id = storage.put(entry.get("body"), message_id)
    return {**entry, "headers": {**headers, OBJECT_ID_HEADER: object_id}, "body": {}}
