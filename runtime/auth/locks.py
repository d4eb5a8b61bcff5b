"""Who may refresh a credential now, across the processes and machines that share it.

Replicas of a step (and many flows on one connection) hold one OAuth2 credential. A
provider that rotates refresh tokens and detects reuse revokes the whole grant when two of
them refresh with the same refresh token, so a refresh must be serialised everywhere the
credential is used, not only in one process. ``ELASTICIO_CREDENTIAL_LOCK_URL`` chooses how
(runtime.auth.lock_store makes the lock it names):

=====================  ==================================================================
``redis://HOST/DB``    replicas on several machines: a lease with an owner token, renewed
                       while held, released by compare-and-delete
``file:///DIR``        replicas on one machine: an OS file lock per credential in ``DIR``
unset                  this process only (``InProcessLock``); said once at start-up
=====================  ==================================================================

Both stores also keep the newest keys of each credential, sealed (runtime.auth.sealing),
written right after the token call and before anything uses them: a replica that dies
before the platform has saved its keys leaves them where the others look first, so nobody
presents the refresh token it used up. A credentials file is always locked beside itself
(``CredentialsFile.lock``) and is its own store. The lock is taken only to refresh: a
request whose token is good costs nothing more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_LEASE = 45.0
"""Seconds a Redis lock outlives a holder that stopped renewing it (longer than one token
call may take, 30 s, so a slow provider never lets a second replica in)."""
DEFAULT_WAIT = 60.0
"""Seconds a refresh waits for another replica's refresh before failing as retryable."""
REMEMBERED_VERSIONS = 32
"""How many superseded credentials a shared record still recognises as its predecessors."""


@dataclass(frozen=True)
class SharedKeys:
    """The newest keys a lock store holds for a credential, and what they superseded."""

    keys: dict[str, Any]
    replaced: tuple[str, ...]
    """Fingerprints of the credentials this one succeeds, newest first: a replica holding
    any of them is behind and adopts ``keys`` instead of refreshing."""
    saved: bool = False
    """The credential's own store (the platform) has them too; until then, whoever adopts
    them saves them there."""


class CredentialLock(Protocol):
    """A lock per credential that every replica sharing the credential goes through."""

    @property
    def where(self) -> str:
        """The lock store, for messages and logs (never with a password)."""
        ...

    def hold(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Hold the credential's lock for the block.

        Raises:
            CredentialLockUnavailable: not had within the store's deadline; nothing may be
                refreshed.
        """
        ...

    def latest(self, key: str) -> SharedKeys | None:
        """The newest keys the store keeps for the credential, if it keeps any."""
        ...

    def remember(self, key: str, shared: SharedKeys) -> bool:
        """Keep new keys for the other replicas; True once they are durably kept (False
        from a store that keeps none, or that failed: the failure is logged)."""
        ...

    def check(self) -> str | None:
        """What is wrong with the store right now, or None: for a warning at start-up."""
        ...


class InProcessLock:
    """No coordination beyond this process: the in-process single flight is all there is."""

    where = "this process only"

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        yield

    def latest(self, key: str) -> SharedKeys | None:
        return None

    def remember(self, key: str, shared: SharedKeys) -> bool:
        return False  # nothing to share with

    def check(self) -> str | None:
        return None


IN_PROCESS = InProcessLock()
