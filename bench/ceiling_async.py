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
import signal
from typing import Any

import aiohttp
from pika.adapters.asyncio_connection import AsyncioConnection

from bench.ceiling_wire import Confirmed, env, listen_queue, params, prefetch, read


class Ceiling:
    def __init__(self, loop: asyncio.AbstractEventLoop, config: dict[str, Any]) -> None:
        self.loop = loop
        self.api_url = config.get("apiUrl")
        self.auth = {"Authorization": f"Bearer {config.get('accessToken')}"}
        self.http: aiohttp.ClientSession | None = None
        self.wire = Confirmed()
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self.api_url:
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
            )
        self.connect(self.on_publisher)

    def connect(self, on_channel: Any) -> None:
        """A connection of its own with one channel, as the worker has for reads and writes."""
        AsyncioConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
            custom_ioloop=self.loop,
        )

    def on_publisher(self, channel: Any) -> None:
        self.wire.publisher = channel
        channel.confirm_delivery(
            self.wire.on_confirm, callback=lambda _f: self.connect(self.on_consumer)
        )

    def on_consumer(self, channel: Any) -> None:
        self.wire.consumer = channel
        channel.basic_qos(
            prefetch_count=prefetch,
            callback=lambda _f: channel.basic_consume(listen_queue, self.on_message),
        )

    def on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        message = read(body)
        if self.http is None:
            self.wire.publish(method.delivery_tag, properties, message["body"])
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
        self.wire.publish(delivery_tag, properties, {**body, "answer": answer})


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
