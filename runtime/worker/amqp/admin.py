"""A short-lived blocking connection for declaring topology, publishing and reading queues,
and a reachability probe.

The worker never uses the client (the platform owns the topology); the local platform and the
tests do.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pika

from runtime.worker.amqp.addresses import parameters_of
from runtime.worker.amqp.convert import from_pika, to_pika
from runtime.worker.transport import Properties


def broker_reachable(url: str, timeout: float = 2.0) -> bool:
    """True when a TCP connection to the broker's host and port (to one of the nodes listed,
    comma-separated) opens."""
    for parameters in parameters_of(url):
        try:
            socket.create_connection((parameters.host, parameters.port), timeout=timeout).close()
        except OSError:
            continue
        return True
    return False


class AdminClient:
    """Declare, publish (confirmed), count and read queues, on one blocking connection."""

    def __init__(self, url: str, *, name: str = "admin") -> None:
        nodes = parameters_of(url)  # the first node of a cluster that answers
        for parameters in nodes:
            parameters.client_properties = {"connection_name": f"{socket.gethostname()}-{name}"}
        self._connection = pika.BlockingConnection(nodes)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()

    def declare_exchange(self, name: str, kind: str = "direct", *, durable: bool = True) -> None:
        self._channel.exchange_declare(name, exchange_type=kind, durable=durable)

    def declare_queue(
        self, name: str, *, durable: bool = True, arguments: dict[str, Any] | None = None
    ) -> None:
        self._channel.queue_declare(name, durable=durable, arguments=arguments)

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self._channel.queue_bind(queue, exchange, routing_key=routing_key)

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        """Remove a binding (none there is no error)."""
        self._channel.queue_unbind(queue, exchange, routing_key=routing_key)

    def delete_queue(self, name: str) -> None:
        self._channel.queue_delete(name)

    def count(self, queue: str) -> int:
        frame = self._channel.queue_declare(queue, passive=True)
        return int(frame.method.message_count)

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: Properties) -> None:
        """Publish and wait for the broker's confirm."""
        self._channel.basic_publish(exchange, routing_key, body, to_pika(properties))

    def get(self, queue: str) -> tuple[bytes, Properties] | None:
        """Take one message (acked at once), or None when the queue is empty."""
        method, properties, body = self._channel.basic_get(queue, auto_ack=True)
        if method is None:
            return None
        return body, from_pika(properties)

    def consume(
        self,
        queue: str,
        on_message: Callable[[bytes, Properties], None],
        *,
        stop: threading.Event,
        auto_ack: bool = False,
    ) -> None:
        """Deliver messages to ``on_message`` (acked after it returns) until ``stop`` is set."""
        for method, properties, body in self._channel.consume(
            queue, auto_ack=auto_ack, inactivity_timeout=0.2
        ):
            if stop.is_set():
                break
            if method is None:
                continue
            on_message(body, from_pika(properties))
            if not auto_ack:
                self._channel.basic_ack(method.delivery_tag)
        self._channel.cancel()

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
