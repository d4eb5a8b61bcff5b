"""Taking messages from one queue and publishing what each becomes, exactly once.

The local platform's router is such a relay: each message of a step's data becomes one
message for each next step. A relay publishes a message's forwards and acks the message in
one AMQP transaction (``tx.select``), several messages to a transaction: if the relay dies
before a commit, neither the forwards nor the acks happened, the broker redelivers, and each
message is forwarded once; after it, both happened. Publisher confirms cannot give that: a
forward confirmed just before a crash would be made again on the redelivery.

A transaction is committed every ``batch`` messages, and whenever the queue has nothing
more to give at once, so a quiet flow waits no longer than one poll for its forwards.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pika

from runtime.worker.amqp.addresses import parameters_of
from runtime.worker.amqp.convert import from_pika, to_pika
from runtime.worker.transport import Properties

Forward = tuple[str, str, bytes, Properties]
"""Exchange, routing key, body and properties of one message to publish."""
Route = Callable[[bytes, Properties], list[Forward]]

_POLL = 0.05


class Relay:
    """Consume ``queue``; for each message publish ``route(body, properties)`` and ack it,
    in transactions of up to ``batch`` messages, until ``stop`` is set."""

    def __init__(self, url: str, queue: str, route: Route, *, name: str, batch: int = 64) -> None:
        self.url = url
        self.queue = queue
        self.route = route
        self.name = name
        self.batch = batch
        self.committed = 0

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``; a lost connection raises (the caller opens a new relay)."""
        nodes = parameters_of(self.url)
        for parameters in nodes:
            parameters.client_properties = {
                "connection_name": f"{socket.gethostname()}-{self.name}"
            }
        connection = pika.BlockingConnection(nodes)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.batch * 2)
            channel.tx_select()
            pending, last_tag = 0, 0
            for method, properties, body in channel.consume(self.queue, inactivity_timeout=_POLL):
                if method is None or stop.is_set():
                    if pending:
                        self._commit(channel, last_tag, pending)
                        pending = 0
                    if stop.is_set():
                        break
                    continue
                for exchange, key, out, props in self.route(body, from_pika(properties)):
                    channel.basic_publish(exchange, key, out, to_pika(props))
                last_tag, pending = method.delivery_tag, pending + 1
                if pending >= self.batch:
                    self._commit(channel, last_tag, pending)
                    pending = 0
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def _commit(self, channel: pika.adapters.blocking_connection.BlockingChannel,
                last_tag: int, count: int) -> None:  # fmt: skip
        channel.basic_ack(last_tag, multiple=True)
        channel.tx_commit()
        self.committed += count
