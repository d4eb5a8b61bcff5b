"""The budget for transient failures (429, 5xx, network): bounded in tries and in time.

It is separate from the single auth retry, so the two never multiply, and it honours the
server's ``Retry-After`` (seconds or an HTTP date) when that fits in what is left.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 503})
SERVER_ERRORS = frozenset({500, 502, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, or None when absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class RetryBudget:
    """How many more transient retries one request may make, and for how long."""

    attempts: int = 3
    max_wait: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    _used: int = 0
    _started: float = field(default_factory=time.monotonic)

    def next_delay(self, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try, or None when the budget is spent."""
        if self._used >= self.attempts:
            return None
        elapsed = time.monotonic() - self._started
        remaining = self.max_wait - elapsed
        if retry_after is not None:
            delay = retry_after
        else:
            backoff = min(self.max_delay, self.base_delay * 2**self._used)
            delay = backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto
        if delay > remaining:
            return None
        self._used += 1
        return delay

    def wait(self, retry_after: float | None) -> bool:
        """Sleep before the next try; False (without sleeping) when the budget is spent."""
        delay = self.next_delay(retry_after)
        if delay is None:
            return False
        if delay > 0:
            self.sleep(delay)
        return True
