"""What the worker and the broker module exchange: deliveries, properties and confirmations.

Plain data, no pika: only ``runtime.amqp`` knows the AMQP library.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal

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
        return replace(self, headers=headers)


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


class Confirmation:
    """Completed by the broker's I/O thread; waited for by the thread that published."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._value: Any = None

    def resolve(self, value: Any = True) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None) -> Any:
        """The value, once confirmed; raises the failure, or TransportError on timeout."""
        if not self._done.wait(timeout):
            raise TransportError(f"the broker did not confirm within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self._value
