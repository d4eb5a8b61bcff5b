"""The broker: the only module that talks AMQP (pika).

One I/O thread runs pika's select loop with two connections, like the Node.js sailor: a
*read* connection that consumes the step's queue with ``basic.qos(prefetch)``, and a *write*
connection in confirm mode that publishes with ``mandatory`` and watches for returned
messages. Other threads never touch a channel: they hand work to the I/O thread
(``publish``, ``settle``) and wait on a ``Confirmation``.

When a connection or channel is lost the broker reconnects in-process with bounded
back-off and consumes again; publishes not yet confirmed are sent again on the new channel
(at least once). Delivery tags die with their connection, so each delivery carries the
*generation* of the connection it came on, and settling a delivery of an older generation
does nothing: the broker requeues those messages and delivers them again.
"""

from __future__ import annotations

import collections
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.channel
import pika.connection
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.select_connection import IOLoop
from pika.adapters.utils import io_services_utils

from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.transport import (
    Confirmation,
    Delivery,
    Properties,
    Settlement,
    UnroutableError,
)

_COALESCE_LIMIT = 256 * 1024
COALESCING_PIKA_VERSIONS = ("1.3.", "1.4.")
"""pika releases whose private send loop the coalescing patch was written against."""


def coalescing_applies() -> bool:
    """Whether this pika has the private send loop the patch expects (version and shape)."""
    transport = getattr(io_services_utils, "_AsyncTransportBase", None)
    produce = getattr(transport, "_produce", None)
    return (
        pika.__version__.startswith(COALESCING_PIKA_VERSIONS)
        and callable(produce)
        and "_tx_buffers" in getattr(getattr(produce, "__code__", None), "co_names", ())
    ) or bool(getattr(produce, "coalescing", False))


def _install_coalescing_writes() -> bool:
    """Send pika's queued frames in one ``send()`` instead of one per frame; True if on.

    pika queues every frame (a publish is three, an ack one) and, once the socket is
    writable, sends them one system call each; under load that was a quarter of the I/O
    thread's time. Joining the small ones first sends the same bytes, in the same order,
    in far fewer calls. Only the send loop's input changes; its bookkeeping is pika's own.
    It replaces a private method, so it is installed only by a ``Broker`` (not on import),
    only for the pika releases it was checked against, and only while that method still
    reads ``self._tx_buffers``; otherwise pika sends as it always does.
    """
    if not coalescing_applies():
        _log.warning("frame_coalescing_off", pika=pika.__version__)
        return False
    transport = io_services_utils._AsyncTransportBase
    original = transport._produce
    if getattr(original, "coalescing", False):
        return True

    def produce(self: Any) -> None:
        buffers = self._tx_buffers
        if len(buffers) > 1:
            joined: list[bytes] = []
            size = 0
            while buffers and size < _COALESCE_LIMIT:
                chunk = buffers.popleft()
                joined.append(chunk)
                size += len(chunk)
            buffers.appendleft(b"".join(joined))
        original(self)

    produce.coalescing = True  # type: ignore[attr-defined]
    transport._produce = produce
    return True


OnDelivery = Callable[[Delivery], None]
"""Called on the I/O thread for each delivery: must hand it off and return at once."""

_log = get_logger("runtime.amqp")
_NOT_FOUND = 404


@dataclass(frozen=True)
class Reconnect:
    """How hard to try when the broker goes away."""

    first_delay: float = 0.1
    max_delay: float = 5.0
    startup_attempts: int = 4
    deadline: float = 300.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class PublishRetry:
    """How a publish the broker refused (nack) is sent again, as the sailor's settings say:
    after ``min(delay·2^i, max_delay)`` seconds, at most ``attempts`` times (within the
    publish's own deadline either way)."""

    delay: float = 0.1
    attempts: float = math.inf
    max_delay: float = 300.0

    def wait(self, attempt: int) -> float:
        return float(min(self.max_delay, self.delay * 2 ** max(0, attempt - 1)))


@dataclass
class _Outage:
    """How long one of the two connections has been down, and how often we tried."""

    attempts: int = 0
    since: float | None = None

    def record(self) -> None:
        self.attempts += 1
        if self.since is None:
            self.since = time.monotonic()

    def clear(self) -> None:
        self.attempts = 0
        self.since = None


@dataclass
class _Pending:
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    mandatory: bool
    confirmation: Confirmation
    deadline: float
    returned: str | None = None
    attempts: int = 0


def to_pika(properties: Properties) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        headers=properties.headers or None,
        delivery_mode=properties.delivery_mode,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expiration=properties.expiration,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        user_id=properties.user_id,
        app_id=properties.app_id,
    )


def from_pika(properties: pika.BasicProperties) -> Properties:
    return Properties(
        headers=dict(properties.headers or {}),
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        delivery_mode=properties.delivery_mode,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expiration=properties.expiration,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        user_id=properties.user_id,
        app_id=properties.app_id,
    )


class Broker:
    """The worker's two AMQP connections, driven by one I/O thread.

    Args:
        url: ``amqp://user:pass@host:port/vhost``.
        queue: the queue to consume (the platform declares it; we declare nothing).
        prefetch: ``basic.qos`` prefetch count.
        on_delivery: receives each delivery on the I/O thread.
        name: connection names are ``{name}-read`` and ``{name}-write``.
        reconnect: back-off and deadline for lost connections.
        on_fatal: called once if the broker stays unreachable past the deadline.
        publish_retry: how publishes the broker refused are sent again.
    """

    def __init__(
        self,
        url: str,
        *,
        queue: str | None,
        prefetch: int,
        on_delivery: OnDelivery | None = None,
        name: str | None = None,
        reconnect: Reconnect | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        publish_retry: PublishRetry | None = None,
    ) -> None:
        _install_coalescing_writes()
        self._parameters = pika.URLParameters(url)
        self._publish_retry = publish_retry or PublishRetry()
        self._queue = queue
        self._prefetch = prefetch
        self._on_delivery = on_delivery
        self._name = name or socket.gethostname()
        self._reconnect = reconnect or Reconnect()
        self._on_fatal = on_fatal
        self._loop = IOLoop()
        self._thread = threading.Thread(target=self._run_loop, name="amqp-io", daemon=True)
        self._closing = False
        self._fatal: BaseException | None = None
        # read side
        self._read: pika.SelectConnection | None = None
        self._consumer: pika.channel.Channel | None = None
        self._consumer_tag: str | None = None
        self._consuming = threading.Event()
        self._consumed_once = False
        self._read_ready = threading.Event()
        self._want_consume = False
        self._read_outage = _Outage()
        self.generation = 0
        # write side
        self._write: pika.SelectConnection | None = None
        self._publisher: pika.channel.Channel | None = None
        self._publisher_ready = threading.Event()
        self._write_outage = _Outage()
        self._mailbox: collections.deque[_Pending | Callable[[], None]] = collections.deque()
        self._outbox: collections.deque[_Pending] = collections.deque()
        self._unconfirmed: collections.OrderedDict[int, _Pending] = collections.OrderedDict()
        self._next_tag = 1
        self._expiring = False
        self._flush_scheduled = False
        self._flush_lock = threading.Lock()
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # --- life cycle (any thread) ---------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Open both connections (consuming starts with ``consume``).

        Raises:
            TransportError: the broker is unreachable or refuses the credentials.
        """
        self._thread.start()
        self._loop.add_callback_threadsafe(self._connect_write)
        if self._queue is not None:
            self._loop.add_callback_threadsafe(self._connect_read)
        self._wait_for(
            lambda: (
                self._publisher_ready.is_set()
                and (self._queue is None or self._read_ready.is_set())
            ),
            timeout,
        )
        self._started.set()

    def consume(self, timeout: float = 30.0) -> None:
        """Start consuming the queue.

        Raises:
            TransportError: the queue does not exist, or consuming did not start in time.
        """
        self._want_consume = True
        self._loop.add_callback_threadsafe(self._consume)
        self._wait_for(self._consuming.is_set, timeout)

    def _wait_for(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._start_error is not None:
                raise self._start_error
            if ready():
                return
            time.sleep(0.005)
        raise TransportError(f"the broker did not answer within {timeout:g} s")

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = True,
        timeout: float = 60.0,
    ) -> Confirmation:
        """Queue a publish; the returned confirmation completes when the broker confirms.

        The confirmation fails with ``UnroutableError`` when the broker returns the message,
        and with ``TransportError`` when it is not confirmed within ``timeout`` seconds.
        """
        pending = _Pending(
            exchange, routing_key, body, properties, mandatory, Confirmation(),
            time.monotonic() + timeout,
        )  # fmt: skip
        if self._fatal is not None or self._closing or not self._thread.is_alive():
            pending.confirmation.fail(self._fatal or TransportError("the broker is closed"))
            return pending.confirmation
        self._post(pending)
        return pending.confirmation

    def settle(self, delivery: Delivery, action: Settlement) -> Confirmation:
        """Ack, reject (no requeue) or requeue a delivery; resolves False if it is stale."""
        done = Confirmation()
        self.call_soon(lambda: done.resolve(self.settle_here(delivery, action)))
        return done

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread: now if this is it, else as soon as possible."""
        if threading.current_thread() is self._thread:
            callback()
        else:
            self._post(callback)

    def settle_here(self, delivery: Delivery, action: Settlement) -> bool:
        """Settle on the I/O thread; False when the delivery's connection is gone."""
        channel = self._consumer
        if delivery.generation != self.generation or channel is None or not channel.is_open:
            return False
        if action == "ack":
            channel.basic_ack(delivery.tag)
        elif action == "reject":
            channel.basic_reject(delivery.tag, requeue=False)
        else:
            channel.basic_nack(delivery.tag, requeue=True)
        return True

    def _post(self, item: _Pending | Callable[[], None]) -> None:
        # Many threads post in bursts: one wake-up of the I/O thread serves them all.
        self._mailbox.append(item)
        with self._flush_lock:
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self._loop.add_callback_threadsafe(self._drain)

    def stop_consuming(self, timeout: float = 10.0) -> None:
        """Cancel the consumer; deliveries in flight can still be settled."""
        done = threading.Event()

        def cancel() -> None:
            self._want_consume = False
            if self._consumer is not None and self._consumer.is_open and self._consumer_tag:
                self._consumer.basic_cancel(self._consumer_tag, callback=lambda _f: done.set())
            else:
                done.set()

        self._loop.add_callback_threadsafe(cancel)
        done.wait(timeout)
        self._consuming.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Close both connections and stop the I/O thread."""
        if not self._thread.is_alive():
            return
        self._loop.add_callback_threadsafe(self._close_now)
        self._thread.join(timeout)

    @property
    def consuming(self) -> bool:
        return self._consuming.is_set()

    # --- the I/O thread ----------------------------------------------------------------

    def _run_loop(self) -> None:
        try:
            self._loop.start()
        except Exception as exc:  # noqa: BLE001 - the loop must not die silently
            _log.exception("amqp_loop_failed")
            self._give_up(TransportError(f"the AMQP I/O loop failed: {exc}"))
        finally:
            self._loop.close()

    def _open(
        self,
        role: str,
        on_open: Callable[[pika.connection.Connection], None],
        on_failed: Callable[[pika.connection.Connection, BaseException], None],
        on_closed: Callable[[pika.connection.Connection, BaseException], None],
    ) -> pika.SelectConnection:
        self._parameters.client_properties = {"connection_name": f"{self._name}-{role}"}
        return pika.SelectConnection(
            parameters=self._parameters,
            on_open_callback=on_open,
            on_open_error_callback=on_failed,
            on_close_callback=on_closed,
            custom_ioloop=self._loop,
        )

    def _retry(self, outage: _Outage, reason: BaseException, connect: Callable[[], None]) -> None:
        outage.record()
        if outage.since is None or self._too_long(outage.attempts, outage.since, reason):
            return
        self._loop.call_later(self._reconnect.delay(outage.attempts), connect)

    def _connect_read(self) -> None:
        if not self._closing:
            self._read = self._open(
                "read", self._on_read_open, self._on_read_failed, self._on_read_closed
            )

    def _on_read_open(self, connection: pika.connection.Connection) -> None:
        connection.channel(on_open_callback=self._on_consumer_open)

    def _on_consumer_open(self, channel: pika.channel.Channel) -> None:
        self._consumer = channel
        channel.add_on_close_callback(self._on_consumer_closed)
        channel.add_on_cancel_callback(self._on_cancelled_by_broker)
        channel.basic_qos(prefetch_count=self._prefetch, callback=self._on_qos_ok)

    def _on_qos_ok(self, _frame: pika.frame.Method) -> None:
        self._read_ready.set()
        self._consume()

    def _consume(self) -> None:
        if self._consumer is None or self._queue is None or not self._want_consume:
            return
        if self._consumer_tag is not None and self._consuming.is_set():
            return
        self.generation += 1
        self._consumer_tag = self._consumer.basic_consume(
            self._queue, self._on_message, auto_ack=False, callback=self._on_consume_ok
        )

    def _on_consume_ok(self, _frame: pika.frame.Method) -> None:
        self._consumed_once = True
        self._read_outage.clear()
        self._consuming.set()
        _log.info("consuming", queue=self._queue, prefetch=self._prefetch)

    def _on_message(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = Delivery(
            body=body,
            properties=from_pika(properties),
            tag=method.delivery_tag,
            generation=self.generation,
            redelivered=bool(method.redelivered),
        )
        if self._on_delivery is not None:
            self._on_delivery(delivery)

    def _on_cancelled_by_broker(self, _frame: pika.frame.Method) -> None:
        _log.warning("consumer_cancelled_by_broker", queue=self._queue)
        self._consuming.clear()
        if self._read is not None and self._read.is_open:
            self._read.close()

    def _on_consumer_closed(self, _channel: pika.channel.Channel, reason: BaseException) -> None:
        self._consumer = None
        self._consumer_tag = None
        self._read_ready.clear()
        self._consuming.clear()
        if self._closing:
            return
        if _is_not_found(reason) and not self._consumed_once:
            self._start_error = TransportError(
                f"queue {self._queue!r} does not exist (the broker answered 404); the "
                "platform creates it: check ELASTICIO_LISTEN_MESSAGES_ON"
            )
            return
        _log.warning("consumer_channel_closed", reason=str(reason))
        if self._read is not None and self._read.is_open:
            self._read.close()  # reconnects from _on_read_closed

    def _on_read_failed(
        self, _connection: pika.connection.Connection, error: BaseException
    ) -> None:
        self._read = None
        self._retry(self._read_outage, error, self._connect_read)

    def _on_read_closed(
        self, _connection: pika.connection.Connection, reason: BaseException
    ) -> None:
        self._read = None
        self._consumer = None
        self._consumer_tag = None
        self._read_ready.clear()
        self._consuming.clear()
        if self._closing:
            return
        _log.warning("read_connection_lost", reason=str(reason))
        self._retry(self._read_outage, reason, self._connect_read)

    def _connect_write(self) -> None:
        if not self._closing:
            self._write = self._open(
                "write", self._on_write_open, self._on_write_failed, self._on_write_closed
            )

    def _on_write_open(self, connection: pika.connection.Connection) -> None:
        connection.channel(on_open_callback=self._on_publisher_open)

    def _on_publisher_open(self, channel: pika.channel.Channel) -> None:
        channel.add_on_close_callback(self._on_publisher_closed)
        channel.add_on_return_callback(self._on_return)

        def ready(_frame: pika.frame.Method) -> None:
            self._publisher = channel
            self._next_tag = 1
            self._write_outage.clear()
            self._publisher_ready.set()
            if not self._expiring:
                self._expiring = True
                self._loop.call_later(1.0, self._expire_publishes)
            self._flush()

        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=ready)

    def _on_publisher_closed(self, _channel: pika.channel.Channel, reason: BaseException) -> None:
        self._publisher = None
        self._publisher_ready.clear()
        self._requeue_unconfirmed()
        if self._closing:
            return
        _log.warning("publish_channel_closed", reason=str(reason))
        if self._write is not None and self._write.is_open:
            self._write.close()

    def _on_write_failed(
        self, _connection: pika.connection.Connection, error: BaseException
    ) -> None:
        self._write = None
        self._retry(self._write_outage, error, self._connect_write)

    def _on_write_closed(
        self, _connection: pika.connection.Connection, reason: BaseException
    ) -> None:
        self._write = None
        self._publisher = None
        self._publisher_ready.clear()
        self._requeue_unconfirmed()
        if self._closing:
            return
        _log.warning("write_connection_lost", reason=str(reason))
        self._retry(self._write_outage, reason, self._connect_write)

    def _too_long(self, attempts: int, since: float, reason: BaseException) -> bool:
        if not self._started.is_set():
            if attempts >= self._reconnect.startup_attempts:
                self._start_error = TransportError(
                    f"cannot connect to the broker at {self._parameters.host}:"
                    f"{self._parameters.port}: {_describe(reason)}"
                )
                return True
            return False
        if time.monotonic() - since > self._reconnect.deadline:
            self._give_up(
                TransportError(
                    f"the broker at {self._parameters.host}:{self._parameters.port} stayed "
                    f"unreachable for {self._reconnect.deadline:g} s: {_describe(reason)}"
                )
            )
            return True
        return False

    def _give_up(self, error: BaseException) -> None:
        if self._fatal is not None:
            return
        self._fatal = error
        pendings = [p for p in self._mailbox if isinstance(p, _Pending)]
        for pending in [*pendings, *self._outbox, *self._unconfirmed.values()]:
            pending.confirmation.fail(error)
        self._mailbox.clear()
        self._outbox.clear()
        self._unconfirmed.clear()
        if self._on_fatal is not None:
            threading.Thread(target=self._on_fatal, args=(error,), daemon=True).start()

    # --- publishing (I/O thread) -------------------------------------------------------

    def _drain(self) -> None:
        with self._flush_lock:
            self._flush_scheduled = False
        while self._mailbox:
            item = self._mailbox.popleft()
            if isinstance(item, _Pending):
                self._outbox.append(item)
            else:
                item()
        self._flush()

    def _flush(self) -> None:
        channel = self._publisher
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
            self._unconfirmed[self._next_tag] = pending
            self._next_tag += 1

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
                self._send_again_later(pending)  # the broker could not take it
            elif pending.returned is not None:
                pending.confirmation.fail(
                    UnroutableError(
                        f"the broker returned the message sent to exchange "
                        f"{pending.exchange!r} with routing key {pending.routing_key!r} "
                        f"({pending.returned}): no queue is bound to it"
                    )
                )
            else:
                pending.confirmation.resolve()

    def _send_again_later(self, pending: _Pending) -> None:
        retry = self._publish_retry
        if pending.attempts > retry.attempts:
            pending.confirmation.fail(
                TransportError(f"the broker refused the publish {pending.attempts} times")
            )
            return

        def again() -> None:
            self._outbox.append(pending)
            self._flush()

        self._loop.call_later(retry.wait(pending.attempts), again)

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

    def _expire_publishes(self) -> None:
        now = time.monotonic()
        for pending in self._outbox:
            if now > pending.deadline:
                pending.confirmation.fail(
                    TransportError("the broker did not confirm the publish in time")
                )
        for tag in [t for t, p in self._unconfirmed.items() if now > p.deadline]:
            self._unconfirmed[tag].confirmation.fail(
                TransportError("the broker did not confirm the publish in time")
            )
        if not self._closing:
            self._loop.call_later(1.0, self._expire_publishes)

    def _close_now(self) -> None:
        self._closing = True
        self._consuming.clear()
        for connection in (self._read, self._write):
            if connection is not None and connection.is_open:
                connection.close()
        self._loop.call_later(0.2, self._stop_when_closed)

    def _stop_when_closed(self) -> None:
        open_ = [c for c in (self._read, self._write) if c is not None and not c.is_closed]
        if open_:
            self._loop.call_later(0.05, self._stop_when_closed)
        else:
            self._loop.stop()


def _is_not_found(reason: BaseException) -> bool:
    return (
        isinstance(reason, pika.exceptions.ChannelClosedByBroker)
        and reason.reply_code == _NOT_FOUND
    )


def _describe(reason: BaseException) -> str:
    refused = (
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
    )
    if isinstance(reason, refused):
        return "the broker refused the user name or password (check ELASTICIO_AMQP_URI)"
    return str(reason) or type(reason).__name__


def broker_reachable(url: str, timeout: float = 2.0) -> bool:
    """True when a TCP connection to the broker's host and port opens."""
    parameters = pika.URLParameters(url)
    try:
        socket.create_connection((parameters.host, parameters.port), timeout=timeout).close()
    except OSError:
        return False
    return True


class AdminClient:
    """A short-lived blocking connection for declaring topology, publishing and reading queues.

    The worker never uses it (the platform owns the topology); the local platform and the
    tests do.
    """

    def __init__(self, url: str, *, name: str = "admin") -> None:
        parameters = pika.URLParameters(url)
        parameters.client_properties = {"connection_name": f"{socket.gethostname()}-{name}"}
        self._connection = pika.BlockingConnection(parameters)
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
