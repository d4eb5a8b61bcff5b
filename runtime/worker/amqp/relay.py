"""Taking messages from one queue and publishing what each becomes, exactly once.

The local platform's router is such a relay: each message of a step's data becomes one
message for each next step. A relay publishes a message's forwards and acks the message in
one AMQP transaction (``tx.select``), several messages to a transaction: if the relay dies
before a commit, neither the forwards nor the acks happened, the broker redelivers, and each
message is forwarded once; after it, both happened. Publisher confirms cannot give that: a
forward confirmed just before a crash would be made again on the redelivery.

A transaction is committed as soon as the broker has nothing more buffered for the relay
(at most ``batch`` messages): under load the messages that arrived while the last ones were
being forwarded go in one commit; a quiet flow commits each message at once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pika

from runtime.worker.amqp.addresses import parameters_of
from runtime.worker.amqp.convert import from_pika, to_pika
from runtime.worker.amqp.frames import install_send_patch
from runtime.worker.transport import Properties

Forward = tuple[str, str, bytes, Properties]
"""Exchange, routing key, body and properties of one message to publish."""
Route = Callable[[bytes, Properties], list[Forward]]

_IDLE = 0.2
"""How long one wait for messages lasts when nothing is pending (how soon ``stop`` is seen)."""


class Relay:
    """Consume ``queue``; for each message publish ``route(body, properties)`` and ack it,
    in transactions of up to ``batch`` messages, until ``stop`` is set."""

    def __init__(
        self,
        url: str,
        queue: str,
        route: Route,
        *,
        name: str,
        batch: int = 64,
    ) -> None:
        self.url = url
        self.queue = queue
        self.route = route
        self.name = name
        self.batch = batch
        self.committed = 0
        self.commits = 0

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``; a lost connection raises (the caller opens a new relay)."""
        nodes = parameters_of(self.url)
        for parameters in nodes:
            parameters.client_properties = {
                "connection_name": f"{socket.gethostname()}-{self.name}"
            }
        install_send_patch()  # a commit's frames leave in a few send() calls, not one each
        connection = pika.BlockingConnection(nodes)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.batch * 2)
            channel.tx_select()
            pending: list[int] = []
            forwards: list[Forward] = []

            def on_message(
                _ch: Any, method: Any, properties: pika.BasicProperties, body: bytes
            ) -> None:
                forwards.extend(self.route(body, from_pika(properties)))
                pending.append(method.delivery_tag)

            channel.basic_consume(self.queue, on_message)
            while not stop.is_set():
                before = len(pending)
                connection.process_data_events(time_limit=0 if pending else _IDLE)
                if pending and (len(pending) == before or len(pending) >= self.batch):
                    self._commit(channel, forwards, pending[-1])
                    self.committed += len(pending)
                    self.commits += 1
                    pending.clear()
                    forwards.clear()
        finally:
            if connection.is_open:
                connection.close()

    @staticmethod
    def _commit(channel: Any, forwards: list[Forward], last_tag: int) -> None:
        """Queue every forward's frames, then the ack, then commit: one flush for them all.

        ``BlockingChannel.basic_publish`` flushes the socket after each message (a system
        call or more each); its channel's own ``basic_publish`` only queues the frames, which
        the ack's flush then sends together."""
        queue_only = getattr(getattr(channel, "_impl", None), "basic_publish", None)
        for exchange, key, out, props in forwards:
            if queue_only is not None:
                queue_only(exchange, key, out, to_pika(props))
            else:
                channel.basic_publish(exchange, key, out, to_pika(props))
        channel.basic_ack(last_tag, multiple=True)
        channel.tx_commit()
