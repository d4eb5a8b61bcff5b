"""Test doubles behind the runtime's own interfaces: a broker in memory, a platform API.

``MemoryBroker`` implements ``runtime.worker.transport.BrokerPort`` the way ``runtime.worker.amqp.Broker``
behaves: one I/O thread runs every ``call_soon`` callback in order, publishes are confirmed
(or refused, or returned as unroutable) on that thread, and a settle is applied only to a
delivery of the current connection. As RabbitMQ with ``basic.qos``, it hands over at most
``prefetch`` unsettled deliveries at a time (0: no limit), the rest waiting their turn. It
records every publish and settle, and refuses to settle one delivery tag twice.
"""

from __future__ import annotations

import collections
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import TransportError
from runtime.worker.transport import (
    Confirmation,
    Delivery,
    Properties,
    Settlement,
    UnroutableError,
)


@dataclass(frozen=True)
class Published:
    routing_key: str
    body: bytes
    properties: Properties


@dataclass
class MemoryBroker:
    generation: int = 1
    published: list[Published] = field(default_factory=list)
    settled: dict[tuple[int, int], Settlement] = field(default_factory=dict)
    refuse: Callable[[str, bytes], BaseException | None] | None = None
    """Decides per publish: None to confirm, or the failure to report."""
    on_delivery: Callable[[Delivery], None] | None = None
    on_read_lost: Callable[[int], None] | None = None
    prefetch: int = 0
    """Unsettled deliveries handed over at once, as ``basic.qos``; 0 for no limit."""
    _waiting: collections.deque[Delivery] = field(default_factory=collections.deque)
    _unsettled: int = 0
    _tags: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _loop: queue.SimpleQueue[Callable[[], None]] = field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memory-io", daemon=True)
        self._thread.start()

    # --- BrokerPort ----------------------------------------------------------------------

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
        confirmation = Confirmation()

        def confirm() -> None:
            failure = self.refuse(routing_key, body) if self.refuse is not None else None
            if failure is not None:
                confirmation.fail(failure)
                return
            with self._changed:
                self.published.append(Published(routing_key, body, properties))
                self._changed.notify_all()
            confirmation.resolve()

        self.call_soon(confirm)
        return confirmation

    def call_soon(self, callback: Callable[[], None]) -> None:
        if threading.current_thread() is self._thread:
            callback()
        else:
            self._loop.put(callback)

    def settle_here(self, delivery: Delivery, action: Settlement) -> bool:
        if delivery.generation != self.generation:
            return False
        key = (delivery.generation, delivery.tag)
        with self._changed:
            if key in self.settled:
                raise AssertionError(f"delivery tag {delivery.tag} settled twice")
            self.settled[key] = action
            self._unsettled -= 1
            self._changed.notify_all()
        self._hand_over()
        return True

    # --- driving it ----------------------------------------------------------------------

    def deliver(
        self, body: bytes, headers: dict[str, Any], *, redelivered: bool = False
    ) -> Delivery:
        """Hand a delivery to ``on_delivery`` on the I/O thread, as the broker does."""
        delivery = Delivery(
            body=body,
            properties=Properties(headers=headers, content_type="application/json"),
            tag=next(self._tags),
            generation=self.generation,
            redelivered=redelivered,
        )
        assert self.on_delivery is not None
        self._waiting.append(delivery)
        self.call_soon(self._hand_over)
        return delivery

    def reconnect(self) -> None:
        """The consumer connection is replaced: older deliveries can no longer be settled
        (and no longer count against the prefetch)."""
        with self._changed:
            lost = self.generation
            self.generation += 1
            self._unsettled = 0
        told = self.on_read_lost
        if told is not None:
            self.call_soon(lambda: told(lost))
        self.call_soon(self._hand_over)

    @property
    def waiting(self) -> int:
        """Deliveries not handed over yet: the prefetch is full."""
        return len(self._waiting)

    def _hand_over(self) -> None:
        handler = self.on_delivery
        assert handler is not None
        while self._waiting and (not self.prefetch or self._unsettled < self.prefetch):
            delivery = self._waiting.popleft()
            with self._changed:
                self._unsettled += 1
            handler(delivery)

    def drain(self, timeout: float = 10.0) -> None:
        """Return once the I/O thread has run everything handed to it so far."""
        done = threading.Event()
        self.call_soon(done.set)
        assert done.wait(timeout), "the I/O thread is stuck"

    def wait_for(self, ready: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for the broker")
                self._changed.wait(min(left, 0.05))

    def verdict(self, delivery: Delivery) -> Settlement | None:
        return self.settled.get((delivery.generation, delivery.tag))

    def routed(self, routing_key: str) -> list[Published]:
        with self._changed:
            return [p for p in self.published if p.routing_key == routing_key]

    def _run(self) -> None:
        while True:
            self._loop.get()()


def unroutable(routing_key: str) -> UnroutableError:
    return UnroutableError(f"no queue is bound to {routing_key!r}")


def transport_failure() -> TransportError:
    return TransportError("the broker did not confirm the publish in time")


class FakePlatformApi:
    """The platform API's step data and account saves, in memory."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self.saved: list[tuple[str, dict[str, Any], str | None]] = []
        self.refuse_saves = False

    where = "the fake platform API"

    def step(self, flow_id: str, step_id: str) -> dict[str, Any]:
        return {"config": dict(self.config)}

    def update_account(
        self, account_id: str, keys: dict[str, Any], *, replaces: str | None = None
    ) -> None:
        from runtime.platform.api import PlatformApiError

        if self.refuse_saves:
            raise PlatformApiError("accounts service unavailable", 503)
        self.saved.append((account_id, dict(keys), replaces))
        self.config.update(keys)

    def close(self) -> None:
        pass
