"""One side of the broker (consuming or publishing): its connection, opened through the
broker's ``Connector``, reopened after a loss on the next node, and closed."""

from __future__ import annotations

import time

import pika.connection

from runtime import metrics
from runtime.log import get_logger
from runtime.worker.amqp.addresses import where
from runtime.worker.amqp.connector import Connector
from runtime.worker.amqp.policy import Outage, describe

_log = get_logger(__name__)


class Side:
    """One of the broker's two connections: opened, reopened after a loss, closed."""

    role = ""

    def __init__(self, link: Connector) -> None:
        self._link = link
        self._nodes = link.rotation(self.role)
        self._connection: pika.connection.Connection | None = None
        self._outage = Outage()
        self._lost = False

    def connect(self) -> None:
        if not self._link.closing:
            self._connection = self._link.open(
                self.role, self._nodes.current, self._opened, self._on_failed, self._on_closed
            )

    @property
    def node(self) -> str:
        """The node this side connects (or is connected) to, as ``host:port``."""
        return where(self._nodes.current)

    def _opened(self, connection: pika.connection.Connection) -> None:
        if self._lost:
            self._lost = False
            metrics.reconnected(self.role)
            since = self._outage.since
            _log.warning(
                "amqp_reconnected",
                role=self.role,
                node=self.node,
                seconds=round(time.monotonic() - since, 2) if since is not None else 0.0,
                attempts=self._outage.attempts,
            )
        else:
            _log.info("amqp_connected", role=self.role, node=self.node)
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
        failed = self.node
        self._nodes.advance()  # the next node, if there is another
        self._link.retry(self._outage, error, self.connect, node=failed, role=self.role)

    def _on_closed(self, _connection: pika.connection.Connection, reason: BaseException) -> None:
        self._connection = None
        self._forget()
        if self._link.closing:
            return
        self._lost = True
        _log.warning("amqp_connection_lost", role=self.role, node=self.node, cause=describe(reason))
        lost = self.node
        self._nodes.advance()  # a node that died takes a while to come back: try another
        self._link.retry(self._outage, reason, self.connect, node=lost, role=self.role)
