"""Messages in progress, by ``messageId``: a redelivery is never processed twice.

When the read connection drops, the broker requeues the unacked messages and delivers them
again on the new connection while their first copy is still being processed. The new copy
is not processed; it replaces the old one as the delivery to settle, since the old
delivery tag died with its connection. A message that finished while no connection could
take its ack is remembered for a while, so its redelivery is settled the same way at once.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

from runtime.transport import Delivery, Settlement

REMEMBER_SECONDS = 600.0
REMEMBER_MAX = 10_000


@dataclass(frozen=True)
class Process:
    """Process this delivery."""


@dataclass(frozen=True)
class Duplicate:
    """A copy of a message in progress: it will be settled when the first copy finishes."""


@dataclass(frozen=True)
class AlreadyDone:
    """A redelivery of a finished message: settle it with the verdict it already had."""

    verdict: Settlement


Decision = Process | Duplicate | AlreadyDone


class Deduper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, Delivery] = {}
        self._done: collections.OrderedDict[str, tuple[Settlement, float]] = (
            collections.OrderedDict()
        )

    def begin(self, message_id: str, delivery: Delivery) -> Decision:
        with self._lock:
            self._forget_old()
            if message_id in self._current:
                self._current[message_id] = delivery
                return Duplicate()
            remembered = self._done.pop(message_id, None)
            if remembered is not None:
                return AlreadyDone(remembered[0])
            self._current[message_id] = delivery
            return Process()

    def latest(self, message_id: str) -> Delivery:
        with self._lock:
            return self._current[message_id]

    def finish(
        self, message_id: str, verdict: Settlement, settled: Delivery, applied: bool
    ) -> Delivery | None:
        """Record a settle attempt; returns a newer copy to settle instead, if one arrived."""
        with self._lock:
            current = self._current.get(message_id)
            if current is not None and current is not settled:
                return current
            self._current.pop(message_id, None)
            if not applied:
                self._done[message_id] = (verdict, time.monotonic())
            return None

    def _forget_old(self) -> None:
        limit = time.monotonic() - REMEMBER_SECONDS
        while self._done and (
            len(self._done) > REMEMBER_MAX or next(iter(self._done.values()))[1] < limit
        ):
            self._done.popitem(last=False)
