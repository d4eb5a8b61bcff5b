"""The async ceiling: a bare asyncio worker doing a step's wire work, and nothing else.

One event loop carries everything: pika's asyncio connection adapter (two connections, like
the worker) and, for API-bound cases, one aiohttp session. Per message: consume →
base64-decode → decrypt → parse → (one GET to the API with the step's bearer token, as a
task) → serialise → encrypt → base64 → publish with a confirm → ack once the output is
confirmed. The output carries the same headers the worker sends. No ledger, no outbox, no
time limits, no refresh: what is left when every guarantee of the worker is taken away, so
the gap between it and ``ours+async`` is the price of those guarantees.

Reads the same ELASTICIO_* variables as a worker and fetches the step's configuration from
the platform API, so the bench starts it the same way.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
import uuid
from typing import Any

import aiohttp
import orjson
import pika
from pika.adapters.asyncio_connection import AsyncioConnection

from runtime.worker.crypto import MessageCipher

env = os.environ
cipher = MessageCipher(env["ELASTICIO_MESSAGE_CRYPTO_PASSWORD"], env["ELASTICIO_MESSAGE_CRYPTO_IV"])
params = pika.URLParameters(env["ELASTICIO_AMQP_URI"])
exchange = env["ELASTICIO_PUBLISH_MESSAGES_TO"]
routing_key = env["ELASTICIO_DATA_ROUTING_KEY"]
prefetch = int(env.get("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "1"))
step_ids = {
    "execId": env.get("ELASTICIO_EXEC_ID"),
    "taskId": env.get("ELASTICIO_FLOW_ID"),
    "workspaceId": env.get("ELASTICIO_WORKSPACE_ID"),
    "containerId": env.get("ELASTICIO_CONTAINER_ID"),
    "userId": env.get("ELASTICIO_USER_ID"),
    "stepId": env.get("ELASTICIO_STEP_ID"),
    "compId": env.get("ELASTICIO_COMP_ID"),
    "function": env.get("ELASTICIO_FUNCTION"),
}


class Ceiling:
    def __init__(self, loop: asyncio.AbstractEventLoop, config: dict[str, Any]) -> None:
        self.loop = loop
        self.api_url = config.get("apiUrl")
        self.auth = {"Authorization": f"Bearer {config.get('accessToken')}"}
        self.http: aiohttp.ClientSession | None = None
        self.publisher: Any = None
        self.consumer: Any = None
        self.tag = 0
        self.waiting: dict[int, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self.api_url:
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
            )
        AsyncioConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=self.on_publisher),
            custom_ioloop=self.loop,
        )

    def on_publisher(self, channel: Any) -> None:
        self.publisher = channel
        channel.confirm_delivery(self.on_confirm, callback=lambda _f: self.open_consumer())

    def open_consumer(self) -> None:
        AsyncioConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=self.on_consumer),
            custom_ioloop=self.loop,
        )

    def on_consumer(self, channel: Any) -> None:
        self.consumer = channel
        channel.basic_qos(
            prefetch_count=prefetch,
            callback=lambda _f: channel.basic_consume(
                env["ELASTICIO_LISTEN_MESSAGES_ON"], self.on_message
            ),
        )

    def on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        message = orjson.loads(cipher.decrypt(base64.b64decode(body)))
        if self.http is None:
            self.publish(method.delivery_tag, properties, message["body"])
            return
        task = self.loop.create_task(self.call(method.delivery_tag, properties, message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def call(self, delivery_tag: int, properties: Any, message: dict[str, Any]) -> None:
        assert self.http is not None
        body = message["body"]
        async with self.http.get(f"{self.api_url}/items/{body['seq']}", headers=self.auth) as r:
            r.raise_for_status()
            answer = await r.json()
        self.publish(delivery_tag, properties, {**body, "answer": answer})

    def publish(self, delivery_tag: int, properties: Any, body: Any) -> None:
        encrypted = base64.b64encode(cipher.encrypt(orjson.dumps({"body": body, "headers": {}})))
        now = time.time_ns() // 1_000_000
        headers = {
            "threadId": properties.headers.get("threadId") or str(uuid.uuid4()),
            "messageId": str(uuid.uuid4()),
            "parentMessageId": properties.headers["messageId"],
            **step_ids,
            "start": now,
            "end": now,
            "protocolVersion": 1,
        }
        self.publisher.basic_publish(
            exchange,
            routing_key,
            encrypted,
            pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf8",
                delivery_mode=1,
                headers=headers,
            ),
            mandatory=True,
        )
        self.tag += 1
        self.waiting[self.tag] = delivery_tag

    def on_confirm(self, frame: Any) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        done = [t for t in self.waiting if t <= tag] if multiple else [tag]
        for each in done:
            self.consumer.basic_ack(self.waiting.pop(each))


async def step_config() -> dict[str, Any]:
    url = f"{env['ELASTICIO_API_URI']}/v1/tasks/{env['ELASTICIO_FLOW_ID']}/steps/{env['ELASTICIO_STEP_ID']}"
    auth = aiohttp.BasicAuth(env["ELASTICIO_API_USERNAME"], env["ELASTICIO_API_KEY"])
    async with aiohttp.ClientSession() as session, session.get(url, auth=auth) as answer:
        data: dict[str, Any] = await answer.json()
    return data.get("config") or {}


async def main() -> None:
    loop = asyncio.get_running_loop()
    Ceiling(loop, await step_config()).start()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()


if __name__ == "__main__":
    asyncio.run(main())
