"""What the replicas of a step tell each other so that none runs a message another one ran.

A message runs twice across replicas only when a connection dies under it: its settle (or
the run itself) was on the dead connection, and the broker hands the message to another
replica. So the word is passed exactly then, and costs nothing otherwise:

* when this worker's read connection is lost, it writes ``running`` for each message of
  that connection still running here, and ``done <verdict>`` for those it settled lately
  (the settle may have died with the node); a message that finishes later, with no
  connection to settle on, is written ``done`` too;
* a redelivered message this worker knows nothing of is asked about, off the broker's
  thread: ``done`` → settled the same way without running; ``running`` elsewhere → it
  waits for that run's verdict, until the run's lease (the message time limit and a
  minute) is over; no word → it waits ``GRACE`` seconds for one (the replica whose
  connection died writes as soon as it notices), then runs. A requeue is written too, so
  its redelivery runs at once.

The store is the credential lock's (runtime.worker.replica_store). When it cannot be
reached the worker says so once and decides alone, as without a store: a message may then
run twice, never be lost or blocked.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.log import get_logger
from runtime.worker.replica_store import ReplicaStore, StoreUnavailable
from runtime.worker.transport import Delivery, Settlement

GRACE = 2.0
"""Seconds a redelivery with no word waits for one before it runs."""
POLL = 0.1
KEEP = 600.0
"""Seconds a verdict is kept for the replicas: a redelivery later than that runs again."""

_log = get_logger(__name__)

Settle = Callable[[Delivery, Settlement], None]
Admit = Callable[[Delivery], None]


@dataclass
class _Asked:
    delivery: Delivery
    key: str
    arrived: float


class Replicas:
    """This worker's side of the word between replicas (see the module's docstring).

    Args:
        store: where the word is kept.
        step: the step's name in the keys (its flow and step ids).
        lease: seconds a ``running`` word holds (a message's time limit and a margin).
    """

    def __init__(self, store: ReplicaStore, *, step: str, lease: float) -> None:
        self._store = store
        self._step = re.sub(r"[^A-Za-z0-9_-]", "_", step)
        self._lease = lease
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._inbox: queue.SimpleQueue[tuple[str, str, float] | _Asked] = queue.SimpleQueue()
        self._unreachable = False
        self._marked: set[str] = set()  # the broker's thread's only

    def start(self, *, settle: Settle, admit: Admit) -> None:
        """Begin answering: ``settle`` and ``admit`` are called from this object's thread."""
        threading.Thread(
            target=self._serve, args=(settle, admit), name="replica-word", daemon=True
        ).start()

    def key(self, message_id: str, body: bytes) -> str:
        """The step (readable, to find its records by) and a digest of the message."""
        digest = hashlib.blake2b(digest_size=16)
        for part in (message_id.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return f"{self._step}.{digest.hexdigest()}"

    # --- from the broker's thread: never waits ------------------------------------------

    def running(self, keys: list[str]) -> None:
        until = time.time() + self._lease
        for key in keys:
            self._marked.add(key)
            self._inbox.put((key, f"running {self.owner} {until:.3f}", self._lease))

    @property
    def any_marked(self) -> bool:
        """Whether a ``running`` word awaits its verdict (the common case: none)."""
        return bool(self._marked)

    def marked(self, key: str) -> bool:
        """Whether a ``running`` word was written for ``key`` (its verdict must follow)."""
        return key in self._marked

    def done(self, key: str, verdict: Settlement) -> None:
        self._marked.discard(key)
        self._inbox.put((key, f"done {verdict}", KEEP))

    def ask(self, delivery: Delivery, key: str) -> None:
        self._inbox.put(_Asked(delivery, key, time.monotonic()))

    # --- on its own thread --------------------------------------------------------------

    def _serve(self, settle: Settle, admit: Admit) -> None:
        asked: list[_Asked] = []
        while True:
            writes: list[tuple[str, str, float]] = []
            try:
                item = self._inbox.get(timeout=POLL if asked else None)
                while True:
                    if isinstance(item, _Asked):
                        asked.append(item)
                    else:
                        writes.append(item)
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            if writes:
                self._write(writes)
            asked = [a for a in asked if not self._answered(a, settle, admit)]

    def _write(self, records: list[tuple[str, str, float]]) -> None:
        try:
            self._store.write(records)
        except StoreUnavailable as exc:
            self._said_unreachable(str(exc))
            return
        self._unreachable = False

    def _answered(self, asked: _Asked, settle: Settle, admit: Admit) -> bool:
        """Settle or run ``asked`` if its word (or its want of one) says so; False to ask
        again later."""
        try:
            word = self._store.read(asked.key)
        except StoreUnavailable as exc:
            self._said_unreachable(str(exc))
            admit(asked.delivery)
            return True
        kind, _, rest = (word or "").partition(" ")
        if kind == "done" and rest in ("ack", "reject"):
            settle(asked.delivery, "ack" if rest == "ack" else "reject")
            return True
        if kind == "running":
            owner, _, until = rest.partition(" ")
            if owner != self.owner and time.time() < float(until or 0):
                return False  # another replica still runs it: its verdict will come
        elif kind != "done" and time.monotonic() - asked.arrived < GRACE:
            return False  # no word yet: the replica whose connection died may still write
        admit(asked.delivery)
        return True

    def _said_unreachable(self, why: str) -> None:
        if not self._unreachable:
            self._unreachable = True
            _log.warning(
                "replica_store_unreachable",
                reason=why,
                note="deciding alone until it answers: a message may run twice, none is lost",
            )
