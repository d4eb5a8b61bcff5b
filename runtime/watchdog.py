"""One thread that fires deadlines, instead of a timer thread per message or request.

Deadlines of the same length expire in the order they were armed, so each length keeps an
insertion-ordered map: arming and cancelling are O(1), nothing cancelled lingers (a length
with nothing pending is dropped), and the thread is only woken when a new deadline is
earlier than the one it sleeps towards.

A fired callback runs on a fresh thread, because stopping a step publishes events and
waits for the broker; one slow stop must not delay the next deadline.
"""

from __future__ import annotations

import collections
import itertools
import math
import threading
import time
from collections.abc import Callable


class Deadline:
    """A pending deadline; ``cancel`` it once the work finished in time."""

    __slots__ = ("_owner", "callback", "key", "length", "when")

    def __init__(
        self, owner: Watchdog, key: int, length: float, when: float, callback: Callable[[], None]
    ) -> None:
        self._owner = owner
        self.key = key
        self.length = length
        self.when = when
        self.callback = callback

    def cancel(self) -> None:
        self._owner.forget(self)


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._buckets: dict[float, collections.OrderedDict[int, Deadline]] = {}
        self._keys = itertools.count()
        self._sleeping_until = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, callback: Callable[[], None]) -> Deadline:
        when = time.monotonic() + seconds
        with self._lock:
            deadline = Deadline(self, next(self._keys), seconds, when, callback)
            bucket = self._buckets.get(seconds)
            if bucket is None:
                bucket = self._buckets[seconds] = collections.OrderedDict()
            bucket[deadline.key] = deadline
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
                self._thread.start()
            if when < self._sleeping_until:
                self._wake.notify()
        return deadline

    def forget(self, deadline: Deadline) -> None:
        with self._lock:
            bucket = self._buckets.get(deadline.length)
            if bucket is not None:
                bucket.pop(deadline.key, None)
                if not bucket:
                    del self._buckets[deadline.length]

    def _earliest(self) -> Deadline | None:
        heads = [next(iter(bucket.values())) for bucket in self._buckets.values() if bucket]
        return min(heads, key=lambda d: d.when) if heads else None

    def _loop(self) -> None:
        while True:
            with self._lock:
                while True:
                    due = self._earliest()
                    now = time.monotonic()
                    if due is not None and due.when <= now:
                        bucket = self._buckets[due.length]
                        bucket.pop(due.key, None)
                        if not bucket:
                            del self._buckets[due.length]
                        break
                    self._sleeping_until = due.when if due is not None else math.inf
                    self._wake.wait(None if due is None else due.when - now)
                self._sleeping_until = math.inf
            threading.Thread(target=due.callback, name="step-timeout", daemon=True).start()


WATCHDOG = Watchdog()
