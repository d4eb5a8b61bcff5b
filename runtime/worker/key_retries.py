"""Keys the platform did not take yet: saved again in the background until it does.

A refresh whose keys the platform refused (it answered 500, or did not answer) leaves them
here, one entry per account: newer keys replace older ones still waiting, keeping the
version the platform held when the first of them was refused, since that is what it still
holds. A thread tries again with back-off (1 s, doubling, at most a minute), and every
failed try is one ``keys_not_saved`` log line saying what happens next. Saves of one
account never overlap, here or in a message's own save (``account_lock``), so an older
save can never land after a newer one.

At shutdown ``settle`` tries at once and keeps trying until its deadline; whatever is
still unsaved then is returned, for the caller to log and to exit non-zero: those keys
would die with the container.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.auth.cache import fingerprint
from runtime.auth.credentials import Credentials
from runtime.auth.errors import CredentialError, KeysConflict
from runtime.log import get_logger

Save = Callable[[str, dict[str, Any], str | None], None]
"""Saves one account's keys on the platform, comparing with ``replaces``; raises if not."""

FIRST_DELAY, MAX_DELAY = 1.0, 60.0
SETTLE_DELAY = 1.0

_log = get_logger(__name__)


@dataclass(eq=False)
class Unsaved:
    """One account's newest keys that the platform has not taken."""

    account: str
    keys: dict[str, Any]
    replaces: str | None
    attempts: int = 1
    due: float = field(default_factory=time.monotonic)

    @property
    def fingerprint(self) -> str | None:
        try:
            return fingerprint(Credentials.parse(self.keys))
        except CredentialError:
            return None


class KeyRetries:
    def __init__(self, save: Save, where: str) -> None:
        self._save = save
        self._where = where
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting: dict[str, Unsaved] = {}
        self._account_locks: dict[str, threading.Lock] = {}
        self._thread: threading.Thread | None = None
        self._settling = False

    def account_lock(self, account: str) -> threading.Lock:
        """Held around every save of ``account``, here and by the caller's own saves."""
        with self._lock:
            return self._account_locks.setdefault(account, threading.Lock())

    def add(self, account: str, keys: dict[str, Any], replaces: str | None) -> None:
        """Save these keys later; they supersede any of the account's still waiting."""
        with self._lock:
            earlier = self._waiting.get(account)
            entry = Unsaved(account, dict(keys), replaces)
            if earlier is not None:
                entry.replaces, entry.attempts = earlier.replaces, earlier.attempts
            entry.due = time.monotonic() + _delay(entry.attempts)
            self._waiting[account] = entry
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="keys-retry", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def saved(self, account: str) -> None:
        """The account's keys were saved by other means: nothing older is worth saving."""
        with self._lock:
            self._waiting.pop(account, None)
            self._changed.notify_all()

    @property
    def waiting(self) -> list[Unsaved]:
        with self._lock:
            return list(self._waiting.values())

    def settle(self, seconds: float) -> list[Unsaved]:
        """Try now and until ``seconds`` have passed; what is still unsaved then."""
        deadline = time.monotonic() + max(0.0, seconds)
        with self._lock:
            self._settling = True
            for entry in self._waiting.values():
                entry.due = time.monotonic()
            self._changed.notify_all()
            while self._waiting and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return list(self._waiting.values())

    def _run(self) -> None:
        while True:
            with self._lock:
                entry = self._next_due()
                while entry is None:
                    soonest = min((e.due for e in self._waiting.values()), default=None)
                    timeout = None if soonest is None else max(0.0, soonest - time.monotonic())
                    self._changed.wait(timeout)
                    entry = self._next_due()
            self._try(entry)

    def _next_due(self) -> Unsaved | None:
        now = time.monotonic()
        return next((e for e in self._waiting.values() if e.due <= now), None)

    def _try(self, entry: Unsaved) -> None:
        with self.account_lock(entry.account):
            with self._lock:
                if self._waiting.get(entry.account) is not entry:
                    return  # superseded or saved meanwhile
            try:
                self._save(entry.account, entry.keys, entry.replaces)
            except KeysConflict:
                _log.warning(
                    "keys_conflict",
                    account=entry.account,
                    fingerprint=entry.fingerprint,
                    note="the platform holds keys saved since; those stay and are used",
                )
                self._drop(entry)
                return
            except Exception as exc:  # noqa: BLE001 - every failure is retried, and said
                self._failed(entry, exc)
                return
        _log.info(
            "keys_saved",
            account=entry.account,
            fingerprint=entry.fingerprint,
            store=self._where,
            attempt=entry.attempts + 1,
        )
        self._drop(entry)

    def _failed(self, entry: Unsaved, error: Exception) -> None:
        with self._lock:
            entry.attempts += 1
            delay = SETTLE_DELAY if self._settling else _delay(entry.attempts)
            entry.due = time.monotonic() + delay
        _log.warning(
            "keys_not_saved",
            account=entry.account,
            fingerprint=entry.fingerprint,
            store=self._where,
            attempt=entry.attempts,
            reason=str(error)[:300],
            next=f"trying again in {delay:g} s; the worker waits for it when stopping",
        )

    def _drop(self, entry: Unsaved) -> None:
        with self._lock:
            if self._waiting.get(entry.account) is entry:
                del self._waiting[entry.account]
            self._changed.notify_all()


def _delay(attempts: int) -> float:
    return min(MAX_DELAY, FIRST_DELAY * 2.0 ** max(0, attempts - 1))
