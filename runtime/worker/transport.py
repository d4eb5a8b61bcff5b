"""What the worker and the broker module exchange: deliveries, properties and confirmations.

Plain data, no pika: only ``runtime.worker.amqp`` knows the AMQP library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runtime.errors import TransportError

Settlement = Literal["ack", "reject", "requeue"]


@dataclass(frozen=True, slots=True)
class Properties:
    """AMQP basic properties, as the sailor sets and reads them."""

    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None
    content_encoding: str | None = None
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None

    def with_headers(self, headers: dict[str, Any]) -> Properties:
        # dataclasses.replace costs microseconds per publish: every field copied by hand
        return Properties(
            headers,
            self.content_type,
            self.content_encoding,
            self.delivery_mode,
            self.priority,
            self.correlation_id,
            self.reply_to,
            self.expiration,
            self.message_id,
            self.timestamp,
            self.type,
            self.user_id,
            self.app_id,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message taken from the step's queue."""

    body: bytes
    properties: Properties
    tag: int
    generation: int
    """Which consumer connection delivered it: tags are only valid on that one."""
    redelivered: bool = False

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.headers


class UnroutableError(TransportError):
    """The broker returned a mandatory message: no queue is bound to its routing key."""


# One lock for all confirmations: each holds it for a few instructions, and a lock per
# confirmation would cost more to create than it saves (thousands are made per second).
_CONFIRMATIONS = threading.Lock()


class Confirmation:
    """Completed by the broker's I/O thread; waited for, or called back, elsewhere.

    Callbacks run on the thread that completes the confirmation (usually the I/O thread),
    so they must be quick and must not block.
    """

    __slots__ = ("_callbacks", "_done", "_error", "_event", "_value")

    def __init__(self) -> None:
        self._done = False
        self._error: BaseException | None = None
        self._value: Any = None
        self._event: threading.Event | None = None
        self._callbacks: list[Callable[[Confirmation], None]] | None = None

    def resolve(self, value: Any = True) -> None:
        self._complete(value, None)

    def fail(self, error: BaseException) -> None:
        self._complete(None, error)

    def _complete(self, value: Any, error: BaseException | None) -> None:
        with _CONFIRMATIONS:
            if self._done:
                return
            self._done = True
            self._value = value
            self._error = error
            event, callbacks = self._event, self._callbacks
            self._callbacks = None
        if event is not None:
            event.set()
        for callback in callbacks or ():
            callback(self)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def error(self) -> BaseException | None:
        return self._error

    def on_done(self, callback: Callable[[Confirmation], None]) -> None:
        """Call ``callback(self)`` once complete (at once, here, if it already is)."""
        with _CONFIRMATIONS:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self, timeout: float | None) -> Any:
        """The value, once confirmed; raises the failure, or TransportError on timeout."""
        with _CONFIRMATIONS:
            if not self._done and self._event is None:
                self._event = threading.Event()
            event = self._event
        if event is not None and not event.wait(timeout):
            raise TransportError(f"the broker did not confirm within {timeout or 0:g} s")
        if self._error is not None:
            raise self._error
        return self._value


class BrokerPort(Protocol):
    """What the worker needs of a broker: ``runtime.worker.amqp.Broker``, or a test double."""

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
        """Hand a publish over; the confirmation completes when the broker confirms it."""
        ...

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the broker's I/O thread (at once when called from it)."""
        ...

    def settle_here(self, delivery: Delivery, action: Settlement) -> bool:
        """On the I/O thread: ack, reject or requeue; False when its connection is gone."""
        ...

    on_read_lost: Callable[[int], None] | None
    """Called on the I/O thread with the generation of a read connection that was lost."""
