"""Lightweight messages: bodies kept in the platform's object storage.

A message whose ``headers`` carry ``x-ipaas-object-storage-id`` has its real body in object
storage, encrypted with the flow's key and IV (raw bytes, not base64). Before a step runs,
such bodies (the message's and its passthrough's) are fetched, unless the step says
``autoResolveObjectReferences: false``; with ``ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE`` large
outgoing bodies are stored and replaced by ``{}`` and the header, as the Node.js sailor does.
"""

from __future__ import annotations

from typing import Any

from runtime import bounded
from runtime.platform.object_storage import OBJECT_ID_HEADER, ObjectStorage, ObjectStorageError
from runtime.worker.crypto import CipherError, MessageCipher
from runtime.worker.wire import dumps


class Bodies:
    """Message bodies in object storage, encrypted with the flow's cipher."""

    def __init__(self, storage: ObjectStorage, cipher: MessageCipher) -> None:
        self._storage = storage
        self._cipher = cipher

    @property
    def configured(self) -> bool:
        return self._storage.configured

    def get(self, object_id: str, message_id: str = "") -> Any:
        """A stored body.

        Raises:
            ObjectStorageError: not stored, unreachable, or not a message body of this flow.
        """
        raw = self._storage.fetch(object_id, message_id)
        what = self._storage.describe(object_id)
        try:
            return bounded.loads(self._cipher.decrypt(raw), what=what)
        except CipherError:
            raise ObjectStorageError(f"{what} is not a message body of this flow") from None
        except bounded.OutOfBounds as exc:
            raise ObjectStorageError(str(exc)) from None

    def put(self, value: Any, message_id: str = "") -> str:
        """Store a body; its object id."""
        return self._storage.store(self._cipher.encrypt(dumps(value)), message_id)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def references_objects(message: dict[str, Any]) -> bool:
    """Whether the message or its passthrough keeps a body in object storage."""
    entries = [message, *_as_dict(message.get("passthrough")).values()]
    return any(_as_dict(_as_dict(e).get("headers")).get(OBJECT_ID_HEADER) for e in entries)


def resolve(storage: Bodies, message: dict[str, Any], message_id: str) -> None:
    """Fetch the bodies a message and its passthrough keep in object storage, in place."""
    _resolve_one(storage, message, message_id)
    passthrough = message.get("passthrough")
    if isinstance(passthrough, dict):
        for entry in passthrough.values():
            if isinstance(entry, dict):
                _resolve_one(storage, entry, message_id)


def _resolve_one(storage: Bodies, entry: dict[str, Any], message_id: str) -> None:
    headers = entry.get("headers")
    if isinstance(headers, dict) and headers.get(OBJECT_ID_HEADER):
        entry["body"] = storage.get(str(headers[OBJECT_ID_HEADER]), message_id)


def offload(
    storage: Bodies, data: dict[str, Any], threshold: int, message_id: str
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


def _offloaded(storage: Bodies, entry: Any, message_id: str) -> Any:
    if not isinstance(entry, dict):
        return entry
    headers = _as_dict(entry.get("headers"))
    if headers.get(OBJECT_ID_HEADER):
        return {**entry, "body": {}}
    object_id = storage.put(entry.get("body"), message_id)
    return {**entry, "headers": {**headers, OBJECT_ID_HEADER: object_id}, "body": {}}
