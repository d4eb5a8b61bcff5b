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

import signal

import pika
from pika.adapters.select_connection import IOLoop

from bench.ceiling_wire import Confirmed, listen_queue, params, prefetch, read

loop = IOLoop()
wire = Confirmed()


def on_message(channel, method, properties, body):
    wire.publish(method.delivery_tag, properties, read(body)["body"])


def on_consumer(channel):
    wire.consumer = channel
    channel.basic_qos(
        prefetch_count=prefetch,
        callback=lambda _f: channel.basic_consume(listen_queue, on_message),
    )


def on_publisher(channel):
    wire.publisher = channel
    channel.confirm_delivery(
        wire.on_confirm,
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
