"""The broker: the worker's two AMQP connections, driven by one I/O loop.

Like the Node.js sailor, a *read* connection consumes the step's queue with
``basic.qos(prefetch)`` (``consumer.py``) and a *write* connection in confirm mode publishes
with ``mandatory`` and watches for returned messages (``publishing.py``). Both live on one
loop (``io.py``): a thread of their own, or the worker's steps loop. Other threads never
touch a channel: they hand work to the loop (``publish``, ``call_soon``) and wait on a
``Confirmation``. When a connection or channel is lost it is reopened in-process with
bounded back-off (``policy.py``); a broker that stays away past the deadline ends it with
``on_fatal``. While the loop is blocked, ``heartbeats.py`` keeps both connections alive.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable

import pika
import pika.connection

from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.worker.amqp.addresses import parameters_of
from runtime.worker.amqp.connector import Connector
from runtime.worker.amqp.consumer import Consumer, OnDelivery
from runtime.worker.amqp.frames import install_send_patch
from runtime.worker.amqp.heartbeats import HeartbeatGuard, missing_pika_privates
from runtime.worker.amqp.io import Io, OwnThread
from runtime.worker.amqp.policy import Recovery
from runtime.worker.amqp.publishing import Pending, Publishing
from runtime.worker.transport import Confirmation, Delivery, Properties, Settlement

TICK = 0.25
"""How often the loop marks itself as turning (``loop_alive``, the heartbeat guard)."""

_log = get_logger(__name__)


class Broker:
    """The worker's two AMQP connections, driven by one I/O loop.

    Args:
        url: ``amqp://user:pass@host:port/vhost``, or several, comma-separated: the nodes
            of a cluster, tried in turn (runtime.worker.amqp.addresses).
        queue: the queue to consume (the platform declares it; we declare nothing).
        prefetch: ``basic.qos`` prefetch count.
        on_delivery: receives each delivery on the I/O loop's thread.
        name: connection names are ``{name}-read`` and ``{name}-write``.
        recovery: reconnecting, publishes sent again, and whom to tell when it is over.
        io: the loop the connections live on; by default a thread of their own.
    """

    def __init__(
        self,
        url: str,
        *,
        queue: str | None,
        prefetch: int,
        on_delivery: OnDelivery | None = None,
        name: str | None = None,
        recovery: Recovery | None = None,
        io: Io | None = None,
    ) -> None:
        guarded = install_send_patch() and not _guard_cannot_run()
        recovery = recovery or Recovery()
        self._on_fatal = recovery.on_fatal
        self._io: Io = io or OwnThread(self._crashed)
        self._closed = threading.Event()
        self._fatal: BaseException | None = None
        self.link = Connector(
            parameters_of(url),
            name=name or socket.gethostname(),
            io=self._io,
            reconnect=recovery.reconnect,
            give_up=self._give_up,
            heartbeat=recovery.heartbeat,
        )
        self._consumer = (
            Consumer(self.link, queue=queue, prefetch=prefetch, on_delivery=on_delivery)
            if queue is not None
            else None
        )
        self._publishing = Publishing(self.link, recovery.publish_retry)
        self._mailbox: collections.deque[Pending | Callable[[], None]] = collections.deque()
        self._drain_scheduled = False
        self._drain_lock = threading.Lock()
        self._last_tick = time.monotonic()
        self._guard = HeartbeatGuard(self._connections, self._late) if guarded else None

    # --- from any thread -----------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Open both connections (consuming starts with ``consume``).

        Raises:
            TransportError: the broker is unreachable or refuses the credentials.
        """
        consumer = self._consumer
        self._io.start()
        self._io.call_threadsafe(self._tick)
        self._io.call_threadsafe(self._publishing.connect)
        if consumer is not None:
            self._io.call_threadsafe(consumer.connect)
        if self._guard is not None:
            self._guard.start()
        self._wait_for(
            lambda: (
                self._publishing.ready.is_set() and (consumer is None or consumer.ready.is_set())
            ),
            timeout,
        )
        self.link.started.set()

    def consume(self, timeout: float = 30.0) -> None:
        """Start consuming the queue.

        Raises:
            TransportError: the queue does not exist, or consuming did not start in time.
        """
        consumer = self._consumer
        if consumer is None:
            raise TransportError("this broker was made without a queue to consume")
        self._io.call_threadsafe(consumer.consume)
        self._wait_for(consumer.consuming.is_set, timeout)

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
        pending = Pending(
            exchange, routing_key, body, properties, mandatory, Confirmation(),
            time.monotonic() + timeout,
        )  # fmt: skip
        if self._fatal is not None or self.link.closing or not self._io.alive():
            pending.confirmation.fail(self._fatal or TransportError("the broker is closed"))
            return pending.confirmation
        self._post(pending)
        return pending.confirmation

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O loop: now if this is its thread, else soon."""
        if self._io.in_loop():
            callback()
        else:
            self._post(callback)

    def settle_here(self, delivery: Delivery, action: Settlement) -> bool:
        """Settle on the I/O loop; False when the delivery's connection is gone."""
        consumer = self._consumer
        return consumer is not None and consumer.settle_here(delivery, action)

    def stop_consuming(self, timeout: float = 10.0) -> None:
        """Cancel the consumer; deliveries in flight can still be settled."""
        consumer = self._consumer
        if consumer is None:
            return
        done = threading.Event()
        self._io.call_threadsafe(lambda: consumer.cancel(done))
        done.wait(timeout)
        consumer.consuming.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Close both connections (and stop the I/O thread, when they have their own)."""
        if self._guard is not None:
            self._guard.stop()
        if not self._io.alive():
            self._io.stop(timeout)
            return
        self._io.call_threadsafe(self._close_now)
        self._closed.wait(timeout)
        self._io.stop(timeout)

    @property
    def on_read_lost(self) -> Callable[[int], None] | None:
        """Called on the I/O loop with the generation of a read connection that was lost
        (its deliveries can no longer be settled)."""
        return self._consumer.on_lost if self._consumer is not None else None

    @on_read_lost.setter
    def on_read_lost(self, callback: Callable[[int], None] | None) -> None:
        if self._consumer is not None:
            self._consumer.on_lost = callback

    @property
    def consuming(self) -> bool:
        return self._consumer is not None and self._consumer.consuming.is_set()

    @property
    def publishing(self) -> bool:
        """The confirming channel for publishes is open."""
        return self._publishing.ready.is_set()

    def loop_alive(self, max_silence: float = 10.0) -> bool:
        """The I/O loop's thread runs and the loop turned within ``max_silence`` seconds."""
        quiet = time.monotonic() - self._last_tick
        return self._io.alive() and self._fatal is None and quiet < max_silence

    def _wait_for(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.link.start_error is not None:
                raise self.link.start_error
            if ready():
                return
            time.sleep(0.005)
        raise TransportError(f"the broker did not answer within {timeout:g} s")

    def _post(self, item: Pending | Callable[[], None]) -> None:
        # Work comes in bursts: one wake-up of the loop serves them all.
        self._mailbox.append(item)
        with self._drain_lock:
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        if self._io.in_loop():
            self._io.call_soon(self._drain)
        else:
            self._io.call_threadsafe(self._drain)

    # --- on the I/O loop's thread ---------------------------------------------------------

    def _tick(self) -> None:
        # A heartbeat of the loop itself: a loop stuck in a callback stops ticking.
        self._last_tick = time.monotonic()
        if not self._closed.is_set():
            self._io.timers.call_later(TICK, self._tick)

    def _late(self) -> float:
        return time.monotonic() - self._last_tick - TICK

    def _connections(self) -> list[pika.connection.Connection | None]:
        consumer = self._consumer
        return [self._publishing.connection, consumer.connection if consumer else None]

    def _crashed(self, error: BaseException) -> None:
        _log.error("amqp_loop_failed", error=repr(error)[:500])
        self._give_up(TransportError(f"the AMQP I/O loop failed: {error}"))

    def _drain(self) -> None:
        with self._drain_lock:
            self._drain_scheduled = False
        while self._mailbox:
            item = self._mailbox.popleft()
            if isinstance(item, Pending):
                self._publishing.add(item)
            else:
                item()
        self._publishing.flush()

    def _give_up(self, error: BaseException) -> None:
        if self._fatal is not None:
            return
        self._fatal = error
        waiting = [p for p in self._mailbox if isinstance(p, Pending)]
        self._mailbox.clear()
        self._publishing.fail_all(error, waiting)
        if self._on_fatal is not None:
            threading.Thread(target=self._on_fatal, args=(error,), daemon=True).start()

    def _close_now(self) -> None:
        self.link.closing = True
        if self._consumer is not None:
            self._consumer.close()
        self._publishing.close()
        self._io.timers.call_later(0.2, self._stop_when_closed)

    def _stop_when_closed(self) -> None:
        consumer_open = self._consumer is not None and not self._consumer.closed
        if consumer_open or not self._publishing.closed:
            self._io.timers.call_later(0.05, self._stop_when_closed)
        else:
            self._closed.set()


def _guard_cannot_run() -> bool:
    missing = missing_pika_privates()
    if missing:
        _log.warning("heartbeat_guard_off", pika=pika.__version__, missing=missing)
    return bool(missing)
