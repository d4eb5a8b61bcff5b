"""The live state of each credential in this process: its ``Slot`` (the tokens it has
now, and the token sets it had, so a stale copy in a step's cfg is recognised), kept in a
``CredentialCache`` by the credential's key. runtime.auth.slots refreshes them."""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.auth.credentials import Credentials
from runtime.auth.errors import ReauthRequired
from runtime.auth.locks import IN_PROCESS, CredentialLock

Reload = Callable[[], Credentials | None]
"""Re-reads the credential from its own store, in case another process rotated it."""

SLOT_MEMORY = 64
"""How many of its past token sets a slot still recognises in a step's (stale) cfg."""


def fingerprint(credentials: Credentials) -> str:
    """A short hash of the token material: logged instead of tokens, compared for changes."""
    material = f"{credentials.access_token}|{credentials.refresh_token}|{credentials.token}"
    return hashlib.sha256(material.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Sharing:
    """How one credential is shared beyond this process."""

    key: str
    """The credential's name in the lock: the platform account id when there is one."""
    lock: CredentialLock = IN_PROCESS
    reload: Reload | None = None


@dataclass(frozen=True)
class Refreshed:
    credentials: Credentials
    minted: bool
    """True when this process got these tokens from the token endpoint; False when they
    came from a store (another replica's refresh), so a refusal of them is worth one more
    refresh."""


@dataclass(eq=False)
class Slot:
    """The live state of one credential in this process (compared, and hashed, by identity)."""

    current: Credentials
    minted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=SLOT_MEMORY)
    )
    unsaved: tuple[Credentials, Credentials] | None = None
    """New keys whose save failed, and the credential they replaced."""
    refused: ReauthRequired | None = None
    refused_until: float = 0.0
    refreshes: int = 0

    def __post_init__(self) -> None:
        self.held.append(fingerprint(self.current))

    def take(self, credentials: Credentials, *, minted: bool) -> None:
        self.current = credentials
        self.minted = minted
        self.held.append(fingerprint(credentials))


class CredentialCache:
    """Slots by credential key; a credential that changed outside (re-auth) gets a new slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, Slot] = {}

    def slot(self, key: str, credentials: Credentials) -> Slot:
        print_ = fingerprint(credentials)
        with self._lock:
            slot = self._slots.get(key)
            # A step's cfg may carry any token set this slot has had (it is read once at
            # start-up); one it never had means the user reconnected: start afresh.
            if slot is None or print_ not in slot.held:
                slot = Slot(current=credentials)
                self._slots[key] = slot
            return slot

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


CACHE = CredentialCache()
