"""What each side of the broker (consuming, publishing) needs of the broker that owns them:
the timers of the loop they run on, a way to open their connection, and the reconnect
decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pika.connection

from runtime import metrics
from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.worker.amqp.io import OnOpen, OnProblem, Timers
from runtime.worker.amqp.policy import Outage

_log = get_logger("runtime.worker.amqp")


class Link(Protocol):
    @property
    def loop(self) -> Timers:
        """The I/O loop every callback of the connection runs on."""
        ...

    @property
    def closing(self) -> bool:
        """True once the broker is being closed: lost connections are not reopened."""
        ...

    def open(
        self, role: str, on_open: OnOpen, on_failed: OnProblem, on_closed: OnProblem
    ) -> pika.connection.Connection:
        """Open a connection named after ``role`` on the broker's loop."""
        ...

    def retry(self, outage: Outage, reason: BaseException, connect: Callable[[], None]) -> None:
        """Call ``connect`` again after a back-off, unless the outage lasted too long."""
        ...

    def start_failed(self, error: TransportError) -> None:
        """Starting cannot succeed (a missing queue): the waiting caller raises ``error``."""
        ...


class Side:
    """One of the broker's two connections: opened, reopened after a loss, closed."""

    role = ""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._connection: pika.connection.Connection | None = None
        self._outage = Outage()
        self._lost = False

    def connect(self) -> None:
        if not self._link.closing:
            self._connection = self._link.open(
                self.role, self._opened, self._on_failed, self._on_closed
            )

    def _opened(self, connection: pika.connection.Connection) -> None:
        if self._lost:
            self._lost = False
            metrics.reconnected(self.role)
        self._on_open(connection)

    @property
    def connection(self) -> pika.connection.Connection | None:
        return self._connection

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    @property
    def closed(self) -> bool:
        return self._connection is None or self._connection.is_closed

    def _on_open(self, connection: pika.connection.Connection) -> None:
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop what lived on the lost connection (its channel, its unconfirmed work)."""

    def _on_failed(self, _connection: pika.connection.Connection, error: BaseException) -> None:
        self._connection = None
        self._link.retry(self._outage, error, self.connect)

    def _on_closed(self, _connection: pika.connection.Connection, reason: BaseException) -> None:
        self._connection = None
        self._forget()
        if self._link.closing:
            return
        self._lost = True
        _log.warning(f"{self.role}_connection_lost", reason=str(reason))
        self._link.retry(self._outage, reason, self.connect)
