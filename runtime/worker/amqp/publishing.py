"""The write connection: publishes in confirm mode, ``mandatory``, returns watched.

Every publish waits in the outbox until the channel is open, is sent, and is kept as
unconfirmed until the broker acks it (the confirmation resolves), nacks it (it is sent
again after the retry policy's back-off), or returns it as unroutable (the confirmation
fails with ``UnroutableError``). A lost connection puts the unconfirmed publishes back at
the head of the outbox, to be sent again on the new channel (at least once); a publish
not confirmed by its deadline fails with ``TransportError``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pika
import pika.channel
import pika.connection
import pika.exceptions
import pika.frame
import pika.spec

from runtime import metrics
from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.worker.amqp.connector import Connector
from runtime.worker.amqp.convert import to_pika
from runtime.worker.amqp.link import Side
from runtime.worker.amqp.policy import PublishRetry
from runtime.worker.transport import Confirmation, Properties, UnroutableError

_log = get_logger(__name__)


@dataclass
class Pending:
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    mandatory: bool
    confirmation: Confirmation
    deadline: float
    returned: str | None = field(default=None, init=False)
    attempts: int = 0
    sent_at: float = field(default=0.0, init=False)


class Publishing(Side):
    """Everything here runs on the broker's I/O thread, except ``ready`` read elsewhere."""

    role = "write"

    def __init__(self, link: Connector, retry: PublishRetry) -> None:
        super().__init__(link)
        self._retry = retry
        self._channel: pika.channel.Channel | None = None
        self._outbox: collections.deque[Pending] = collections.deque()
        self._unconfirmed: collections.OrderedDict[int, Pending] = collections.OrderedDict()
        self._next_tag = 1
        self._expiring = False
        self.ready = threading.Event()
        """The confirming channel is open."""

    def add(self, pending: Pending) -> None:
        self._outbox.append(pending)

    def flush(self) -> None:
        """Send what waits in the outbox, if the channel is open."""
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        while self._outbox:
            pending = self._outbox.popleft()
            if pending.confirmation.done:
                continue
            pending.attempts += 1
            pending.returned = None
            headers = pending.properties.headers
            if pending.attempts > 1:
                headers = {**headers, "retry": pending.attempts - 1}
            try:
                channel.basic_publish(
                    pending.exchange,
                    pending.routing_key,
                    pending.body,
                    to_pika(pending.properties.with_headers(headers)),
                    mandatory=pending.mandatory,
                )
            except (pika.exceptions.AMQPError, ValueError, TypeError) as exc:
                pending.confirmation.fail(TransportError(f"publish refused: {exc}"))
                continue
            pending.sent_at = time.monotonic()
            metrics.published(len(pending.body))
            self._unconfirmed[self._next_tag] = pending
            self._next_tag += 1

    def fail_all(self, error: BaseException, also: Iterable[Pending] = ()) -> None:
        """The broker is gone for good: every publish not yet confirmed fails."""
        for pending in [*also, *self._outbox, *self._unconfirmed.values()]:
            pending.confirmation.fail(error)
        self._outbox.clear()
        self._unconfirmed.clear()

    def send_again_later(self, pending: Pending) -> None:
        """A publish the broker refused: again after the back-off, or failed past the limit."""
        if pending.attempts > self._retry.attempts:
            pending.confirmation.fail(
                TransportError(f"the broker refused the publish {pending.attempts} times")
            )
            return

        def again() -> None:
            self._outbox.append(pending)
            self.flush()

        self._link.loop.call_later(self._retry.wait(pending.attempts), again)

    # --- callbacks -----------------------------------------------------------------------

    def _on_open(self, connection: pika.connection.Connection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)

        def confirming(_frame: pika.frame.Method) -> None:
            self._channel = channel
            self._next_tag = 1
            self._outage.clear()
            self.ready.set()
            if not self._expiring:
                self._expiring = True
                self._link.loop.call_later(1.0, self._expire)
            self.flush()

        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=confirming)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tag = method.delivery_tag
        acked = isinstance(method, pika.spec.Basic.Ack)
        tags = [t for t in self._unconfirmed if t <= tag] if method.multiple else [tag]
        for each in tags:
            pending = self._unconfirmed.pop(each, None)
            if pending is None:
                continue
            if not acked:
                self.send_again_later(pending)  # the broker could not take it
            elif pending.returned is not None:
                pending.confirmation.fail(
                    UnroutableError(
                        f"the broker returned the message sent to exchange "
                        f"{pending.exchange!r} with routing key {pending.routing_key!r} "
                        f"({pending.returned}): no queue is bound to it"
                    )
                )
            else:
                metrics.confirmed(time.monotonic() - pending.sent_at)
                pending.confirmation.resolve()

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        _properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        # A return comes just before the confirm of the same publish: mark the oldest match.
        for pending in self._unconfirmed.values():
            if (
                pending.returned is None
                and pending.routing_key == method.routing_key
                and pending.exchange == method.exchange
                and pending.body == body
            ):
                pending.returned = f"{method.reply_code} {method.reply_text}"
                return

    def _requeue_unconfirmed(self) -> None:
        if self._unconfirmed:
            _log.warning("republishing_unconfirmed", count=len(self._unconfirmed))
        self._outbox.extendleft(reversed(list(self._unconfirmed.values())))
        self._unconfirmed.clear()

    def _expire(self) -> None:
        # Failed here, they stay where they are: a late confirm finds them already done.
        now = time.monotonic()
        for pending in [*self._outbox, *self._unconfirmed.values()]:
            if now > pending.deadline:
                pending.confirmation.fail(
                    TransportError("the broker did not confirm the publish in time")
                )
        if not self._link.closing:
            self._link.loop.call_later(1.0, self._expire)

    def _on_channel_closed(self, _channel: pika.channel.Channel, reason: BaseException) -> None:
        self._forget()
        if self._link.closing:
            return
        _log.warning("publish_channel_closed", reason=str(reason))
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _forget(self) -> None:
        self._channel = None
        self.ready.clear()
        self._requeue_unconfirmed()
