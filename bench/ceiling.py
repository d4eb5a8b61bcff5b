"""The ceiling: a bare pika loop doing a passthrough step's wire work, and nothing else.

consume → base64-decode → decrypt → parse → serialise → encrypt → base64 → publish with a
confirm → ack the input once its output is confirmed. The output carries the same headers the
worker (and the Node.js sailor) send, so both put the same bytes on the wire, and JSON goes
through orjson as in the worker. One thread, pika's select loop, two
connections (like the worker). With prefetch > 1 confirms are pipelined: every input in
flight has its output published, and each is acked when its own confirm arrives.

Reads the same ELASTICIO_* variables as a worker, so the bench starts it the same way.
"""

from __future__ import annotations

import base64
import os
import signal
import time
import uuid

import orjson
import pika
from pika.adapters.select_connection import IOLoop

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
loop = IOLoop()
state: dict = {"publisher": None, "consumer": None, "tag": 0, "waiting": {}}


def on_message(channel, method, properties, body):
    message = orjson.loads(cipher.decrypt(base64.b64decode(body)))
    out = {"body": message["body"], "headers": {}}
    encrypted = base64.b64encode(cipher.encrypt(orjson.dumps(out)))
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
    state["publisher"].basic_publish(
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
    state["tag"] += 1
    state["waiting"][state["tag"]] = method.delivery_tag


def on_confirm(frame):
    tag, multiple = frame.method.delivery_tag, frame.method.multiple
    done = [t for t in state["waiting"] if t <= tag] if multiple else [tag]
    for each in done:
        state["consumer"].basic_ack(state["waiting"].pop(each))


def on_consumer(channel):
    state["consumer"] = channel
    channel.basic_qos(
        prefetch_count=prefetch,
        callback=lambda _f: channel.basic_consume(env["ELASTICIO_LISTEN_MESSAGES_ON"], on_message),
    )


def on_publisher(channel):
    state["publisher"] = channel
    channel.confirm_delivery(
        on_confirm,
        callback=lambda _f: pika.SelectConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=on_consumer),
            custom_ioloop=loop,
        ),
    )


pika.SelectConnection(
    params, on_open_callback=lambda c: c.channel(on_open_callback=on_publisher), custom_ioloop=loop
)
signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_threadsafe(loop.stop))
loop.start()
