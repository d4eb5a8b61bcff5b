"""Putting messages into a step's queue and reading what it published, as the platform does."""

from __future__ import annotations

import json
import uuid
from typing import Any

from runtime.devtools.localplatform.flow import FlowSpec
from runtime.worker.amqp import AdminClient
from runtime.worker.crypto import MessageCipher
from runtime.worker.transport import Properties
from runtime.worker.wire import decode_value, encode, protocol_version

EVENT_OF_QUEUE = {
    "message": "data",
    "error": "error",
    "snapshot": "snapshot",
    "keys": "updateKeys",
    "reply": "httpReply",
    "rebound": "rebound",
}


def cipher_for(flow: FlowSpec) -> MessageCipher:
    return MessageCipher(flow.crypto.password, flow.crypto.iv)


def as_message(value: Any) -> dict[str, Any]:
    """A message object: a dict with ``body`` is one, anything else becomes its body."""
    if isinstance(value, dict) and "body" in value:
        return {"headers": {}, **value}
    return {"id": str(uuid.uuid4()), "body": value, "headers": {}, "attachments": {}}


def send(
    flow: FlowSpec,
    admin: AdminClient,
    message: Any,
    *,
    headers: dict[str, Any] | None = None,
    version: int = 1,
) -> str:
    """Publish one message to the step's queue the way a previous step would; its messageId."""
    message_id = str((headers or {}).get("messageId") or uuid.uuid4())
    amqp_headers = {
        "messageId": message_id,
        "taskId": flow.flow_id,
        "execId": f"{flow.flow_id}-exec",
        "stepId": "local-platform",
        "protocolVersion": version,
        **(headers or {}),
    }
    body = encode(as_message(message), cipher_for(flow), version)
    properties = Properties(
        headers=amqp_headers,
        content_type="application/json",
        content_encoding="utf8",
        delivery_mode=2,
    )
    admin.publish(flow.publish_exchange, flow.routing_key("input"), body, properties)
    return message_id


def read(flow: FlowSpec, kind: str, body: bytes, properties: Properties) -> dict[str, Any]:
    """One published event, decrypted, as a JSON-ready dict."""
    headers = properties.headers
    cipher = cipher_for(flow)
    payload: Any
    if kind == "error":
        envelope = json.loads(body)
        payload = {
            "error": decode_value(envelope["error"].encode(), cipher, 1),
            "errorInput": decode_value(envelope["errorInput"].encode(), cipher, 1)
            if envelope.get("errorInput")
            else None,
        }
    elif kind == "snapshot":
        payload = json.loads(body)
    elif kind in ("message", "rebound"):
        payload = decode_value(body, cipher, protocol_version(headers))
    else:
        payload = decode_value(body, cipher, 1)
    event = EVENT_OF_QUEUE[kind]
    if kind == "reply" and headers.get("x-eio-error-response"):
        event = "error reply"
    return {"event": event, "headers": headers, "payload": payload}


def encode_for(flow: FlowSpec, value: Any, version: int = 1) -> bytes:
    """A value encrypted with the flow's key, as a step's body on the wire."""
    return encode(value, cipher_for(flow), version)
