"""Message bodies on the wire: decrypting what arrives, encrypting what leaves.

Protocol version 1 carries the ciphertext as base64 text, version 2 as raw bytes (the
``protocolVersion`` header says which; absent means 1). Errors travel as a plain JSON
envelope ``{"error": b64(enc({name, message, stack})), "errorInput": b64(enc(original))}``,
always base64; snapshots travel as plain JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

import orjson

from runtime import bounded
from runtime.step.events import Message
from runtime.worker.crypto import CipherError, MessageCipher
from runtime.worker.transport import Delivery

InputFormat = Literal["default", "error"]


class BadMessage(ValueError):
    """A delivery that is not a message of this flow; the text never includes its content."""


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as ``JSON.stringify`` writes it."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # Beyond orjson (integers past 64 bits, keys that are not text): the stdlib writes
        # these, or raises the error a step author knows.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def protocol_version(headers: dict[str, Any]) -> int:
    value = headers.get("protocolVersion")
    try:
        return int(value) if value not in (None, "") else 1
    except (TypeError, ValueError):
        return 1


def encode(value: Any, cipher: MessageCipher, version: int = 1) -> bytes:
    """Encrypt a JSON value for the wire in the given protocol version."""
    encrypted = cipher.encrypt(dumps(value))
    return base64.b64encode(encrypted) if version < 2 else encrypted


def decode_value(body: bytes, cipher: MessageCipher, version: int = 1) -> Any:
    """Decrypt and parse one encrypted JSON value.

    Raises:
        BadMessage: not base64 (v1), not decryptable with this flow's key, or not JSON.
    """
    if not body:
        return None
    try:
        ciphertext = base64.b64decode(body) if version < 2 else body
    except (binascii.Error, ValueError):
        raise BadMessage("the body is not base64 text (protocol version 1)") from None
    try:
        plaintext = cipher.decrypt(ciphertext)
    except CipherError as exc:
        raise BadMessage(f"the body cannot be decrypted: {exc}") from None
    try:
        return bounded.loads(plaintext, what="the decrypted body")
    except bounded.OutOfBounds as exc:
        raise BadMessage(str(exc)) from None


def decode(
    delivery: Delivery,
    cipher: MessageCipher,
    input_format: InputFormat,
    limit: int | None = None,
) -> Message:
    """The message a step receives, with ``headers.reply_to`` from the AMQP header.

    Raises:
        BadMessage: the delivery cannot be read as a message (or is over ``limit`` bytes).
    """
    if limit is not None and len(delivery.body) > limit:
        raise BadMessage(
            f"the message is {len(delivery.body):,} bytes, more than the {limit:,} accepted "
            "(ELASTICIO_INCOMING_MESSAGE_SIZE_LIMIT)"
        )
    headers = delivery.headers
    if input_format == "error":
        message = _decode_error_envelope(delivery, cipher)
    else:
        value = decode_value(delivery.body, cipher, protocol_version(headers))
        if not isinstance(value, dict):
            kind = "empty" if value is None else f"a JSON {type(value).__name__}"
            raise BadMessage(f"the message is {kind}, not a JSON object")
        message = Message(value)
    if not isinstance(message.get("headers"), dict):
        message["headers"] = {}
    if isinstance(headers.get("reply_to"), str) and headers["reply_to"]:
        message["headers"]["reply_to"] = headers["reply_to"]
    return message


def _decode_error_envelope(delivery: Delivery, cipher: MessageCipher) -> Message:
    try:
        envelope = bounded.loads(delivery.body, what="the error envelope")
    except bounded.OutOfBounds as exc:
        raise BadMessage(str(exc)) from None
    if not isinstance(envelope, dict):
        raise BadMessage("the error envelope is not a JSON object")
    body = dict(envelope)
    for field in ("error", "errorInput"):
        if envelope.get(field):
            body[field] = decode_value(str(envelope[field]).encode(), cipher, 1)
    return Message(body=body, headers=dict(delivery.headers))


def error_envelope(
    error: dict[str, str], original: Delivery | None, cipher: MessageCipher
) -> tuple[bytes, bytes]:
    """The error routing key's body, and the bare encrypted error for the reply copy."""
    encrypted_error = encode(error, cipher, 1)
    payload: dict[str, str] = {"error": encrypted_error.decode()}
    if original is not None and original.body:
        if protocol_version(original.headers) >= 2:
            # Same key and IV: re-encrypting the decrypted input gives these very bytes.
            payload["errorInput"] = base64.b64encode(original.body).decode()
        else:
            payload["errorInput"] = original.body.decode("ascii", errors="replace")
    return dumps(payload), encrypted_error
