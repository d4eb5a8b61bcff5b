"""Static flow control per event type, as the Node.js sailor has it (p-throttle semantics).

At most ``limit`` events start in any ``interval``; a caller over the limit sleeps until the
oldest of the last ``limit`` starts is ``interval`` old.
"""

from __future__ import annotations

import collections
import threading
import time


class Throttle:
    def __init__(self, limit: int, interval_ms: int) -> None:
        self._limit = max(1, limit)
        self._interval = interval_ms / 1000
        self._starts: collections.deque[float] = collections.deque(maxlen=self._limit)
        self._lock = threading.Lock()

    def turn(self) -> float:
        """Take the next start; the seconds to wait before it (0: now). Starts are taken
        in order, so events that wait for their turn still go out in the order they came."""
        with self._lock:
            now = time.monotonic()
            start = now
            if len(self._starts) == self._limit:
                start = max(now, self._starts[0] + self._interval)
            self._starts.append(start)
        return start - now

    def wait(self) -> None:
        delay = self.turn()
        if delay > 0:
            time.sleep(delay)
