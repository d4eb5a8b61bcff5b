"""What the two sides of the broker (consuming, publishing) are given: the timers of the
loop they run on, a way to open a connection named after their role, where in the list of
nodes each starts, and the reconnect decision with its deadline (``Broker`` is the public
face that owns one; its sides are runtime.worker.amqp.link's ``Side``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pika
import pika.connection

from runtime.errors import TransportError
from runtime.log import get_logger
from runtime.worker.amqp.addresses import Rotation
from runtime.worker.amqp.addresses import where as address_of
from runtime.worker.amqp.io import Io, OnOpen, OnProblem, Timers
from runtime.worker.amqp.policy import Outage, Reconnect, describe

_log = get_logger(__name__)


class Connector:
    """The broker as its two connections see it.

    Args:
        nodes: the cluster's nodes, in the order given.
        name: connection names are ``{name}-{role}``.
        io: the loop the connections live on.
        reconnect: back-off and deadline for lost connections.
        give_up: called (on the loop) with the error once the deadline passed.
        heartbeat: seconds of each connection's heartbeat unless its URL gives one; None
            for the broker's.
    """

    def __init__(
        self,
        nodes: list[pika.connection.Parameters],
        *,
        name: str,
        io: Io,
        reconnect: Reconnect,
        give_up: Callable[[BaseException], None],
        heartbeat: int | None = None,
    ) -> None:
        self._nodes = nodes
        self._heartbeat = heartbeat
        self._name = name
        self._io = io
        self._reconnect = reconnect
        self._give_up = give_up
        self.closing = False
        """True once the broker is being closed: lost connections are not reopened."""
        self.started = threading.Event()
        self.start_error: BaseException | None = None

    @property
    def loop(self) -> Timers:
        return self._io.timers

    def open(
        self,
        role: str,
        node: pika.connection.Parameters,
        on_open: OnOpen,
        on_failed: OnProblem,
        on_closed: OnProblem,
    ) -> pika.connection.Connection:
        node.client_properties = {"connection_name": f"{self._name}-{role}"}
        if node.heartbeat is None and self._heartbeat:
            node.heartbeat = self._heartbeat
        return self._io.connect(node, on_open, on_failed, on_closed)

    def rotation(self, role: str) -> Rotation:
        # Read from the first node, write to the second: one node lost costs one side.
        return Rotation(self._nodes, 1 if role == "write" else 0)

    def retry(
        self,
        outage: Outage,
        reason: BaseException,
        connect: Callable[[], None],
        *,
        node: str,
        role: str,
    ) -> None:
        """Call ``connect`` again after a back-off, unless the outage lasted too long
        (``node`` is the one that failed, for the message)."""
        outage.record()
        if outage.since is None or self._too_long(outage.attempts, outage.since, reason, node):
            return
        # Every other node is tried at once; the back-off starts once all of them failed.
        count = len(self._nodes)
        rounds = (outage.attempts + count - 1) // count
        round_over = outage.attempts % count == 0
        delay = self._reconnect.delay(rounds) if round_over else 0.0
        if round_over:  # one line a round, however many nodes and whatever pika said
            _log.warning(
                "amqp_unreachable",
                role=role,
                nodes=", ".join(map(address_of, self._nodes)),
                attempts=outage.attempts,
                cause=describe(reason),
                retry_in=round(delay, 2),
            )
        self._io.timers.call_later(delay, connect)

    def start_failed(self, error: TransportError) -> None:
        self.start_error = error

    def _too_long(self, attempts: int, since: float, reason: BaseException, node: str) -> bool:
        where = node if len(self._nodes) == 1 else ", ".join(map(address_of, self._nodes))
        if not self.started.is_set():
            if attempts >= self._reconnect.startup_attempts * len(self._nodes):
                self.start_error = TransportError(
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
