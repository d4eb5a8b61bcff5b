"""What each side of the broker (consuming, publishing) needs of the broker that owns them:
the I/O loop they run on, a way to open their connection, and the reconnect decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pika
import pika.connection
from pika.adapters.select_connection import IOLoop

from runtime.errors import TransportError
from runtime.worker.amqp.policy import Outage

OnOpen = Callable[[pika.connection.Connection], None]
OnProblem = Callable[[pika.connection.Connection, BaseException], None]


class Link(Protocol):
    @property
    def loop(self) -> IOLoop:
        """The I/O loop every callback of the connection runs on."""
        ...

    @property
    def closing(self) -> bool:
        """True once the broker is being closed: lost connections are not reopened."""
        ...

    def open(
        self, role: str, on_open: OnOpen, on_failed: OnProblem, on_closed: OnProblem
    ) -> pika.SelectConnection:
        """Open a connection named after ``role`` on the broker's loop."""
        ...

    def retry(self, outage: Outage, reason: BaseException, connect: Callable[[], None]) -> None:
        """Call ``connect`` again after a back-off, unless the outage lasted too long."""
        ...

    def start_failed(self, error: TransportError) -> None:
        """Starting cannot succeed (a missing queue): the waiting caller raises ``error``."""
        ...
