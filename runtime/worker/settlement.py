"""One owner for each delivery's fate: ack, reject or requeue, decided once and performed once.

The life of a delivery. Every arrow is taken here; the broker only performs a settle on its
I/O thread and says whether the delivery's connection was still there::

    received ─┬─ no messageId header ──────────────────────────▶ reject
              ├─ redelivered, same bytes as a message running ─▶ parked, settled with it
              ├─ redelivered, same bytes as a message that finished
              │  while no connection could take its verdict ────▶ that verdict, not run again
              ├─ redelivered, same bytes as a message settled lately:
              │  the settle was sent, then lost with its node ─▶ that verdict, not run again
              └─ anything else ─▶ running ─▶ settle(verdict)
                                              │ on the I/O thread: every copy is settled with the
                                              │ verdict; copies whose connection is gone are skipped
                                              │ (the broker gives them back), and if none was live
                                              └ the verdict is remembered for the redelivery

A copy is a true redelivery only when the broker says so and its bytes are the message's:
messages that merely share a ``messageId`` (a step passing its input on, or emitting copies
of one object) all run. Verdicts:

* **ack**: the step ended and the broker confirmed every event it published;
* **reject**: an error before ``end`` (the sailor's rule), bad input, or anything unexpected
  (then with an error event when the message could be read);
* **requeue**: its events could not be published. A requeue cannot loop for ever: after
  ``MAX_REQUEUES`` requeues of the same message (counted here, and by the broker's
  ``x-delivery-count`` header where the queue keeps one) it is rejected instead.

Decisions on arrival and settles run on the broker's I/O thread, one at a time, so the
bookkeeping needs no lock; ``settle`` may be called from any thread.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from runtime.log import get_logger
from runtime.worker.replicas import Replicas
from runtime.worker.transport import BrokerPort, Delivery, Settlement

MAX_REQUEUES = 5
REMEMBER_SECONDS = 600.0
REMEMBER_MAX = 10_000
LATELY_BYTES = 16 * 1024 * 1024
"""The settles sent lately are remembered by reference to their deliveries (no digest on
the hot path), two prefetches' worth and at most this many bytes of bodies: a node that
dies takes with it only the settles still on their way."""

_log = get_logger(__name__)
_V = TypeVar("_V")


@dataclass(eq=False)
class Ticket:
    """A message running here: its first delivery and any redelivered copies parked on it."""

    message_id: str
    deliveries: list[Delivery]
    settled: bool = False

    @property
    def delivery(self) -> Delivery:
        return self.deliveries[0]


@dataclass(frozen=True)
class Run:
    """Run this message; settle its ticket when its fate is known."""

    ticket: Ticket


@dataclass(frozen=True)
class Handled:
    """Nothing to run: the delivery was parked on its first copy or settled on arrival."""

    why: str


Admission = Run | Handled


@dataclass
class _Memory:
    """Verdicts of messages that finished while no connection could take them."""

    verdicts: collections.OrderedDict[tuple[str, bytes], tuple[Settlement, float]] = field(
        default_factory=collections.OrderedDict
    )
    requeues: collections.OrderedDict[tuple[str, bytes], int] = field(
        default_factory=collections.OrderedDict
    )
    lately: collections.deque[tuple[Delivery, Settlement]] = field(
        default_factory=collections.deque
    )
    """Deliveries settled lately and how, newest last: a settle the broker acknowledges
    nowhere may have died with the connection's node after it was sent."""
    lately_bytes: int = 0
    lately_count: int = 16

    def settled(self, delivery: Delivery, verdict: Settlement) -> None:
        self.lately.append((delivery, verdict))
        self.lately_bytes += len(delivery.body)
        while len(self.lately) > self.lately_count or self.lately_bytes > LATELY_BYTES:
            old, _ = self.lately.popleft()
            self.lately_bytes -= len(old.body)

    def settled_lately(self, delivery: Delivery, message_id: str) -> Settlement | None:
        for earlier, verdict in reversed(self.lately):
            same = earlier.headers.get("messageId") == message_id
            if same and earlier.generation != delivery.generation and earlier.body == delivery.body:
                return verdict
        return None


class Ledger:
    """Each delivery's fate (see the module's docstring).

    Args:
        broker: performs the settles.
        max_requeues: requeues of one message before it is rejected instead.
        prefetch: the broker's prefetch (how many settles may be on their way at once).
        replicas: the word shared with the step's other replicas (runtime.worker.replicas);
            None when this worker decides alone.
    """

    def __init__(
        self,
        broker: BrokerPort,
        *,
        max_requeues: int = MAX_REQUEUES,
        prefetch: int = 8,
        replicas: Replicas | None = None,
    ) -> None:
        self._broker = broker
        self._max_requeues = max_requeues
        self._running: dict[str, list[Ticket]] = {}
        self._memory = _Memory(lately_count=2 * max(8, prefetch))
        self._in_flight = 0
        self._idle = threading.Condition()
        self._replicas = replicas
        self.on_admitted: Callable[[Ticket], None] | None = None
        """Runs a message admitted after the other replicas were asked about it."""

    # --- on the I/O thread ---------------------------------------------------------------

    def receive(self, delivery: Delivery) -> Admission:
        """Decide what to do with a new delivery (on the I/O thread, as it arrives)."""
        message_id = delivery.headers.get("messageId")
        if not message_id:
            _log.error("message_rejected", reason="no messageId header", tag=delivery.tag)
            self._broker.settle_here(delivery, "reject")
            return Handled("no messageId")
        message_id = str(message_id)
        if delivery.redelivered:
            for ticket in self._running.get(message_id, ()):
                if ticket.delivery.body == delivery.body:
                    ticket.deliveries.append(delivery)
                    _log.warning("redelivery_of_message_in_progress", messageId=message_id)
                    return Handled("parked")
            verdict = self._remembered(message_id, delivery.body)
            if verdict is None:
                verdict = self._memory.settled_lately(delivery, message_id)
            if verdict is not None:
                _log.info("redelivery_settled_as_before", messageId=message_id, verdict=verdict)
                self._broker.settle_here(delivery, verdict)
                return Handled("settled as before")
            if self._replicas is not None:
                with self._idle:
                    self._in_flight += 1
                self._replicas.ask(delivery, self._replicas.key(message_id, delivery.body))
                return Handled("asking the other replicas")
        return Run(self._ticket(message_id, delivery))

    def _ticket(self, message_id: str, delivery: Delivery) -> Ticket:
        ticket = Ticket(message_id, [delivery])
        self._running.setdefault(message_id, []).append(ticket)
        with self._idle:
            self._in_flight += 1
        return ticket

    def admit_asked(self, delivery: Delivery) -> None:
        """The replicas' answer for a delivery asked about: run it here (any thread)."""
        self._broker.call_soon(lambda: self._admit_asked(delivery))

    def settle_asked(self, delivery: Delivery, verdict: Settlement) -> None:
        """The replicas' answer: settle it as another replica did (any thread)."""
        self._broker.call_soon(lambda: self._settle_asked(delivery, verdict))

    def _admit_asked(self, delivery: Delivery) -> None:
        """No other replica settled it, nor runs it now: it runs here."""
        with self._idle:
            self._in_flight -= 1  # counted again as a ticket
        ticket = self._ticket(str(delivery.headers.get("messageId")), delivery)
        if self.on_admitted is not None:
            self.on_admitted(ticket)

    def _settle_asked(self, delivery: Delivery, verdict: Settlement) -> None:
        """Another replica ran it and its verdict is known: settled so, not run here."""
        _log.info(
            "redelivery_settled_as_another_replica_did",
            messageId=delivery.headers.get("messageId"),
            verdict=verdict,
        )
        try:
            if self._broker.settle_here(delivery, verdict):
                self._memory.settled(delivery, verdict)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def connection_lost(self, generation: int) -> None:
        """The read connection of ``generation`` is gone (on the I/O thread): the other
        replicas are told which of its messages still run here, and how those settled
        lately were settled (their settles may have died with it)."""
        replicas = self._replicas
        if replicas is None:
            return
        running = [
            replicas.key(ticket.message_id, ticket.delivery.body)
            for tickets in self._running.values()
            for ticket in tickets
            if not ticket.settled and any(d.generation == generation for d in ticket.deliveries)
        ]
        if running:
            replicas.running(running)
        for delivery, verdict in self._memory.lately:
            if delivery.generation == generation:
                message_id = str(delivery.headers.get("messageId"))
                replicas.done(replicas.key(message_id, delivery.body), verdict)

    def _settle_here(self, ticket: Ticket, verdict: Settlement) -> None:
        if ticket.settled:
            _log.error("settled_twice", messageId=ticket.message_id, verdict=verdict)
            return
        ticket.settled = True
        try:
            verdict = self._bounded(ticket, verdict)
            siblings = self._running.get(ticket.message_id, [])
            if ticket in siblings:
                siblings.remove(ticket)
            if not siblings:
                self._running.pop(ticket.message_id, None)
            applied = False
            for delivery in ticket.deliveries:
                if self._broker.settle_here(delivery, verdict):
                    applied = True
                    if verdict != "requeue":
                        self._memory.settled(delivery, verdict)
            if not applied:
                _log.warning("settle_deferred_until_redelivery", verdict=verdict)
                self._remember(ticket, verdict)
            replicas = self._replicas
            told = not applied or verdict == "requeue"
            if replicas is not None and (told or replicas.any_marked):
                key = replicas.key(ticket.message_id, ticket.delivery.body)
                if told or replicas.marked(key):
                    # Whichever replica gets it next: the verdict, or "run it now"; and a
                    # "running" word said of it is never left standing.
                    replicas.done(key, verdict)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _bounded(self, ticket: Ticket, verdict: Settlement) -> Settlement:
        if verdict != "requeue":
            return verdict
        key = _key(ticket)
        counted = self._memory.requeues.pop(key, 0) + 1
        delivery_count = ticket.delivery.headers.get("x-delivery-count")
        if isinstance(delivery_count, int) and not isinstance(delivery_count, bool):
            counted = max(counted, delivery_count + 1)
        if counted > self._max_requeues:
            _log.error(
                "message_rejected",
                messageId=ticket.message_id,
                reason=f"requeued {counted - 1} times already; rejected so it cannot loop",
            )
            return "reject"
        self._memory.requeues[key] = counted
        _trim(self._memory.requeues)
        return verdict

    def _remember(self, ticket: Ticket, verdict: Settlement) -> None:
        self._memory.verdicts[_key(ticket)] = (verdict, time.monotonic())
        _trim(self._memory.verdicts)

    def _remembered(self, message_id: str, body: bytes) -> Settlement | None:
        verdicts = self._memory.verdicts
        if not verdicts:
            return None
        limit = time.monotonic() - REMEMBER_SECONDS
        while verdicts and next(iter(verdicts.values()))[1] < limit:
            verdicts.popitem(last=False)
        found = verdicts.pop((message_id, _digest(body)), None)
        return found[0] if found is not None else None

    # --- from any thread -----------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Deliveries taken to run and not yet settled."""
        return self._in_flight

    def settle(self, ticket: Ticket, verdict: Settlement) -> None:
        """Decide a running message's fate; it is performed on the I/O thread, once."""
        self._broker.call_soon(lambda: self._settle_here(ticket, verdict))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every message taken so far is settled; False if time ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


def _key(ticket: Ticket) -> tuple[str, bytes]:
    return ticket.message_id, _digest(ticket.delivery.body)


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


def _trim(table: collections.OrderedDict[tuple[str, bytes], _V]) -> None:
    while len(table) > REMEMBER_MAX:
        table.popitem(last=False)
