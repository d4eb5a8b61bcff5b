"""The read connection: the step's queue consumed with a prefetch, deliveries settled.

Delivery tags are only valid on the connection that delivered them, so each delivery
carries the *generation* of its connection, and settling one of an older generation does
nothing: the broker has requeued it and delivers it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pika
import pika.channel
import pika.connection
import pika.frame
import pika.spec

from runtime import metrics
from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.worker.amqp.connector import Connector
from runtime.worker.amqp.convert import from_pika
from runtime.worker.amqp.link import Side
from runtime.worker.amqp.policy import is_not_found
from runtime.worker.transport import Delivery, Settlement

OnDelivery = Callable[[Delivery], None]
"""Called on the I/O thread for each delivery: must hand it off and return at once."""

_log = get_logger(__name__)


class Consumer(Side):
    """Everything here runs on the broker's I/O thread, except the events read elsewhere."""

    role = "read"

    def __init__(
        self, link: Connector, *, queue: str, prefetch: int, on_delivery: OnDelivery | None
    ) -> None:
        super().__init__(link)
        self._queue = queue
        self._prefetch = prefetch
        self._on_delivery = on_delivery
        self._channel: pika.channel.Channel | None = None
        self._tag: str | None = None
        self._consumed_once = False
        self._wanted = False
        self.generation = 0
        self.on_lost: Callable[[int], None] | None = None
        """Told the generation of a connection whose deliveries can no longer be settled."""
        self.ready = threading.Event()
        """The channel is open with its prefetch set."""
        self.consuming = threading.Event()

    def consume(self) -> None:
        """Start consuming (now, or as soon as the channel is ready)."""
        self._wanted = True
        if self._channel is None or (self._tag is not None and self.consuming.is_set()):
            return
        self.generation += 1
        self._tag = self._channel.basic_consume(
            self._queue, self._on_message, auto_ack=False, callback=self._on_consume_ok
        )

    def cancel(self, done: threading.Event) -> None:
        """Stop taking deliveries; those in flight can still be settled."""
        self._wanted = False
        if self._channel is not None and self._channel.is_open and self._tag:
            self._channel.basic_cancel(self._tag, callback=lambda _frame: done.set())
        else:
            done.set()

    def settle_here(self, delivery: Delivery, action: Settlement) -> bool:
        """Ack, reject or requeue; False when the delivery's connection is gone."""
        channel = self._channel
        if delivery.generation != self.generation or channel is None or not channel.is_open:
            return False
        if action == "ack":
            channel.basic_ack(delivery.tag)
        elif action == "reject":
            channel.basic_reject(delivery.tag, requeue=False)
        else:
            channel.basic_nack(delivery.tag, requeue=True)
        metrics.settled(action)
        return True

    def close(self) -> None:
        self.consuming.clear()
        super().close()

    # --- callbacks -----------------------------------------------------------------------

    def _on_open(self, connection: pika.connection.Connection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_cancel_callback(self._on_cancelled_by_broker)
        channel.basic_qos(prefetch_count=self._prefetch, callback=self._on_qos_ok)

    def _on_qos_ok(self, _frame: pika.frame.Method) -> None:
        self.ready.set()
        if self._wanted:
            self.consume()

    def _on_consume_ok(self, _frame: pika.frame.Method) -> None:
        self._consumed_once = True
        self._outage.clear()
        self.consuming.set()
        _log.info("consuming", queue=self._queue, prefetch=self._prefetch)

    def _on_message(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        metrics.received(len(body))
        converted = from_pika(properties)
        delivery = Delivery(
            body=body,
            properties=converted,
            tag=method.delivery_tag,
            generation=self.generation,
            redelivered=bool(method.redelivered) or _delivered_before(converted.headers),
        )
        if self._on_delivery is not None:
            self._on_delivery(delivery)

    def _on_cancelled_by_broker(self, _frame: pika.frame.Method) -> None:
        _log.warning("consumer_cancelled_by_broker", queue=self._queue)
        self.consuming.clear()
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _forget(self) -> None:
        if self._channel is not None and self.on_lost is not None:
            self.on_lost(self.generation)  # its deliveries can no longer be settled
        self._channel = None
        self._tag = None
        self.ready.clear()
        self.consuming.clear()

    def _on_channel_closed(self, _channel: pika.channel.Channel, reason: BaseException) -> None:
        self._forget()
        if self._link.closing:
            return
        if is_not_found(reason) and not self._consumed_once:
            self._link.start_failed(
                TransportError(
                    f"queue {self._queue!r} does not exist (the broker answered 404); the "
                    "platform creates it: check ELASTICIO_LISTEN_MESSAGES_ON"
                )
            )
            return
        _log.warning("consumer_channel_closed", reason=str(reason))
        if self._connection is not None and self._connection.is_open:
            self._connection.close()  # reconnects from _on_closed


def _delivered_before(headers: dict[str, object]) -> bool:
    """A quorum queue counts earlier deliveries in ``x-delivery-count``: a count above 0 is
    a redelivery whatever the flag says (RabbitMQ 3.10 sets both after a node died; the
    count is the one the queue keeps across its leaders)."""
    count = headers.get("x-delivery-count")
    return isinstance(count, int) and not isinstance(count, bool) and count > 0
