"""The wire work both ceilings share: the worker's variables, reading an input, publishing
its output with the worker's headers, and acking each input when its output is confirmed.

Kept bare on purpose (module-level settings, no abstraction beyond one class): the
ceilings measure pika and the crypto, not our code.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from typing import Any

import orjson
import pika

from runtime.worker.crypto import MessageCipher

env = os.environ
cipher = MessageCipher(env["ELASTICIO_MESSAGE_CRYPTO_PASSWORD"], env["ELASTICIO_MESSAGE_CRYPTO_IV"])
params = pika.URLParameters(env["ELASTICIO_AMQP_URI"])
prefetch = int(env.get("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "1"))
listen_queue = env["ELASTICIO_LISTEN_MESSAGES_ON"]
_exchange = env["ELASTICIO_PUBLISH_MESSAGES_TO"]
_routing_key = env["ELASTICIO_DATA_ROUTING_KEY"]
_step_ids = {
    "execId": env.get("ELASTICIO_EXEC_ID"),
    "taskId": env.get("ELASTICIO_FLOW_ID"),
    "workspaceId": env.get("ELASTICIO_WORKSPACE_ID"),
    "containerId": env.get("ELASTICIO_CONTAINER_ID"),
    "userId": env.get("ELASTICIO_USER_ID"),
    "stepId": env.get("ELASTICIO_STEP_ID"),
    "compId": env.get("ELASTICIO_COMP_ID"),
    "function": env.get("ELASTICIO_FUNCTION"),
}


def read(body: bytes) -> dict[str, Any]:
    """An input message: base64-decoded, decrypted, parsed."""
    message: dict[str, Any] = orjson.loads(cipher.decrypt(base64.b64decode(body)))
    return message


class Confirmed:
    """Publishes outputs with a confirm each, and acks each input once its output is confirmed
    (pipelined: with prefetch > 1 every input in flight has its output published)."""

    def __init__(self) -> None:
        self.publisher: Any = None
        self.consumer: Any = None
        self._tag = 0
        self._waiting: dict[int, int] = {}

    def publish(self, delivery_tag: int, properties: Any, body: Any) -> None:
        encrypted = base64.b64encode(cipher.encrypt(orjson.dumps({"body": body, "headers": {}})))
        now = time.time_ns() // 1_000_000
        headers = {
            "threadId": properties.headers.get("threadId") or str(uuid.uuid4()),
            "messageId": str(uuid.uuid4()),
            "parentMessageId": properties.headers["messageId"],
            **_step_ids,
            "start": now,
            "end": now,
            "protocolVersion": 1,
        }
        self.publisher.basic_publish(
            _exchange,
            _routing_key,
            encrypted,
            pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf8",
                delivery_mode=1,
                headers=headers,
            ),
            mandatory=True,
        )
        self._tag += 1
        self._waiting[self._tag] = delivery_tag

    def on_confirm(self, frame: Any) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        done = [t for t in self._waiting if t <= tag] if multiple else [tag]
        for each in done:
            self.consumer.basic_ack(self._waiting.pop(each))
