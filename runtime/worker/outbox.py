"""The publishes of one incoming message: sent without waiting, settled once all confirmed.

A step's emits hand their messages to the broker and return; the broker confirms them in
the background. When the step has ended and every publish of the message is confirmed, the
``on_complete`` callback decides the message's fate, on whichever thread finished last
(usually the broker's I/O thread). A step that emits faster than the broker confirms is
held back once ``window`` publishes are waiting: ``backlog`` names the publish to wait for
(a sync step's thread blocks on it, an async step's run awaits it).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

from runtime.worker.transport import Confirmation

OnComplete = Callable[[list[BaseException]], None]
"""Receives the failures of the message's publishes (empty when all were confirmed)."""

WINDOW = 64


class Outbox:
    def __init__(self, *, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._pending = 0
        self._failures: list[BaseException] = []
        self._on_complete: OnComplete | None = None
        self._recent: collections.deque[Confirmation] = collections.deque()
        self._window = window

    def track(self, confirmation: Confirmation) -> None:
        with self._lock:
            self._pending += 1
        self._recent.append(confirmation)
        confirmation.on_done(self._one_done)

    def backlog(self) -> Confirmation | None:
        """While more than ``window`` publishes are waiting, the oldest unconfirmed one (to
        wait for, once: it is not named again), else None."""
        recent = self._recent
        while len(recent) > self._window:
            oldest = recent.popleft()
            if not oldest.done:
                return oldest
        return None

    def seal(self, on_complete: OnComplete) -> None:
        """No more publishes; call ``on_complete`` once every tracked one is settled."""
        with self._lock:
            self._on_complete = on_complete
            ready = self._pending == 0
        if ready:
            self._complete()

    def _one_done(self, confirmation: Confirmation) -> None:
        with self._lock:
            self._pending -= 1
            if confirmation.error is not None:
                self._failures.append(confirmation.error)
            ready = self._pending == 0 and self._on_complete is not None
        if ready:
            self._complete()

    def _complete(self) -> None:
        with self._lock:
            callback, self._on_complete = self._on_complete, None
        if callback is not None:
            callback(list(self._failures))
