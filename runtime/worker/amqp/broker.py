"""The broker: the worker's two AMQP connections, driven by one I/O thread.

Like the Node.js sailor, a *read* connection consumes the step's queue with
``basic.qos(prefetch)`` (``consumer.py``) and a *write* connection in confirm mode publishes
with ``mandatory`` and watches for returned messages (``publishing.py``). Other threads
never touch a channel: they hand work to the I/O thread (``publish``, ``call_soon``) and
wait on a ``Confirmation``. When a connection or channel is lost it is reopened in-process
with bounded back-off (``policy.py``); a broker that stays away past the deadline ends it
with ``on_fatal``.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable

import pika
from pika.adapters.select_connection import IOLoop

from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.worker.amqp.consumer import Consumer, OnDelivery
from runtime.worker.amqp.frames import install_coalescing_writes
from runtime.worker.amqp.link import OnOpen, OnProblem
from runtime.worker.amqp.policy import Outage, PublishRetry, Reconnect, describe
from runtime.worker.amqp.publishing import Pending, Publishing
from runtime.worker.transport import Confirmation, Delivery, Properties, Settlement

_log = get_logger("runtime.worker.amqp")


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
        install_coalescing_writes()
        self._parameters = pika.URLParameters(url)
        self._name = name or socket.gethostname()
        self._reconnect = reconnect or Reconnect()
        self._on_fatal = on_fatal
        self._loop = IOLoop()
        self._thread = threading.Thread(target=self._run_loop, name="amqp-io", daemon=True)
        self._closing = False
        self._fatal: BaseException | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._consumer = (
            Consumer(self, queue=queue, prefetch=prefetch, on_delivery=on_delivery)
            if queue is not None
            else None
        )
        self._publishing = Publishing(self, publish_retry or PublishRetry())
        self._mailbox: collections.deque[Pending | Callable[[], None]] = collections.deque()
        self._drain_scheduled = False
        self._drain_lock = threading.Lock()
        self._last_tick = time.monotonic()

    # --- from any thread -----------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Open both connections (consuming starts with ``consume``).

        Raises:
            TransportError: the broker is unreachable or refuses the credentials.
        """
        consumer = self._consumer
        self._thread.start()
        self._loop.add_callback_threadsafe(self._publishing.connect)
        if consumer is not None:
            self._loop.add_callback_threadsafe(consumer.connect)
        self._wait_for(
            lambda: (
                self._publishing.ready.is_set() and (consumer is None or consumer.ready.is_set())
            ),
            timeout,
        )
        self._started.set()

    def consume(self, timeout: float = 30.0) -> None:
        """Start consuming the queue.

        Raises:
            TransportError: the queue does not exist, or consuming did not start in time.
        """
        consumer = self._consumer
        if consumer is None:
            raise TransportError("this broker was made without a queue to consume")
        self._loop.add_callback_threadsafe(consumer.consume)
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
        if self._fatal is not None or self._closing or not self._thread.is_alive():
            pending.confirmation.fail(self._fatal or TransportError("the broker is closed"))
            return pending.confirmation
        self._post(pending)
        return pending.confirmation

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread: now if this is it, else as soon as possible."""
        if threading.current_thread() is self._thread:
            callback()
        else:
            self._post(callback)

    def settle_here(self, delivery: Delivery, action: Settlement) -> bool:
        """Settle on the I/O thread; False when the delivery's connection is gone."""
        consumer = self._consumer
        return consumer is not None and consumer.settle_here(delivery, action)

    def stop_consuming(self, timeout: float = 10.0) -> None:
        """Cancel the consumer; deliveries in flight can still be settled."""
        consumer = self._consumer
        if consumer is None:
            return
        done = threading.Event()
        self._loop.add_callback_threadsafe(lambda: consumer.cancel(done))
        done.wait(timeout)
        consumer.consuming.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Close both connections and stop the I/O thread."""
        if not self._thread.is_alive():
            return
        self._loop.add_callback_threadsafe(self._close_now)
        self._thread.join(timeout)

    @property
    def consuming(self) -> bool:
        return self._consumer is not None and self._consumer.consuming.is_set()

    @property
    def publishing(self) -> bool:
        """The confirming channel for publishes is open."""
        return self._publishing.ready.is_set()

    def loop_alive(self, max_silence: float = 10.0) -> bool:
        """The I/O thread runs and its loop turned within ``max_silence`` seconds."""
        quiet = time.monotonic() - self._last_tick
        return self._thread.is_alive() and self._fatal is None and quiet < max_silence

    def _wait_for(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._start_error is not None:
                raise self._start_error
            if ready():
                return
            time.sleep(0.005)
        raise TransportError(f"the broker did not answer within {timeout:g} s")

    def _post(self, item: Pending | Callable[[], None]) -> None:
        # Many threads post in bursts: one wake-up of the I/O thread serves them all.
        self._mailbox.append(item)
        with self._drain_lock:
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self._loop.add_callback_threadsafe(self._drain)

    # --- what the two sides need (runtime.worker.amqp.link.Link) ---------------------------

    @property
    def loop(self) -> IOLoop:
        return self._loop

    @property
    def closing(self) -> bool:
        return self._closing

    def open(
        self, role: str, on_open: OnOpen, on_failed: OnProblem, on_closed: OnProblem
    ) -> pika.SelectConnection:
        self._parameters.client_properties = {"connection_name": f"{self._name}-{role}"}
        return pika.SelectConnection(
            parameters=self._parameters,
            on_open_callback=on_open,
            on_open_error_callback=on_failed,
            on_close_callback=on_closed,
            custom_ioloop=self._loop,
        )

    def retry(self, outage: Outage, reason: BaseException, connect: Callable[[], None]) -> None:
        outage.record()
        if outage.since is None or self._too_long(outage.attempts, outage.since, reason):
            return
        self._loop.call_later(self._reconnect.delay(outage.attempts), connect)

    def start_failed(self, error: TransportError) -> None:
        self._start_error = error

    # --- on the I/O thread -----------------------------------------------------------------

    def _tick(self) -> None:
        # A heartbeat of the loop itself: a loop stuck in a callback stops ticking.
        self._last_tick = time.monotonic()
        self._loop.call_later(1.0, self._tick)

    def _run_loop(self) -> None:
        self._loop.add_callback_threadsafe(self._tick)
        try:
            self._loop.start()
        except Exception as exc:  # noqa: BLE001 - the loop must not die silently
            _log.exception("amqp_loop_failed")
            self._give_up(TransportError(f"the AMQP I/O loop failed: {exc}"))
        finally:
            self._loop.close()

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

    def _too_long(self, attempts: int, since: float, reason: BaseException) -> bool:
        where = f"{self._parameters.host}:{self._parameters.port}"
        if not self._started.is_set():
            if attempts >= self._reconnect.startup_attempts:
                self._start_error = TransportError(
                    f"cannot connect to the broker at {where}: {describe(reason)}"
                )
                return True
            return False
        if time.monotonic() - since > self._reconnect.deadline:
            self._give_up(
                TransportError(
                    f"the broker at {where} stayed unreachable for "
                    f"{self._reconnect.deadline:g} s: {describe(reason)}"
                )
            )
            return True
        return False

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
        self._closing = True
        if self._consumer is not None:
            self._consumer.close()
        self._publishing.close()
        self._loop.call_later(0.2, self._stop_when_closed)

    def _stop_when_closed(self) -> None:
        consumer_open = self._consumer is not None and not self._consumer.closed
        if consumer_open or not self._publishing.closed:
            self._loop.call_later(0.05, self._stop_when_closed)
        else:
            self._loop.stop()
