"""Where the replicas of a step leave each other word of their messages: the store of the
credential lock (``ELASTICIO_CREDENTIAL_LOCK_URL``), Redis or a folder.

A record is a short text under a key made of the step and the message: ``running <owner>
<until>`` while a replica runs it, ``done <verdict>`` once its fate is known, each with its
own expiry. Writes come in batches (one Redis round trip, or one file each, off the broker's
thread); a store that cannot be reached is said once and then left alone until it answers
again: the worker then decides alone, as it does without a store.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runtime.auth.lock_store import store_of

COMMAND_SECONDS = 1.0
"""One try of one command; with the one retry, an unreachable store costs two seconds."""


class StoreUnavailable(Exception):
    """The store did not answer; the worker goes on deciding alone."""


class ReplicaStore(Protocol):
    def write(self, records: list[tuple[str, str, float]]) -> None:
        """Keep each ``(key, text, seconds to keep)``. Raises ``StoreUnavailable``."""
        ...

    def read(self, key: str) -> str | None:
        """The text under ``key``, None when there is none. Raises ``StoreUnavailable``."""
        ...


class RedisStore:
    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=COMMAND_SECONDS,
            socket_connect_timeout=COMMAND_SECONDS,
            retry=Retry(NoBackoff(), 1),
        )

    def write(self, records: list[tuple[str, str, float]]) -> None:
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key, text, keep in records:
                    pipe.set(f"eio:delivery:{key}", text, px=max(1, int(keep * 1000)))
                pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    def read(self, key: str) -> str | None:
        try:
            found = self._client.get(f"eio:delivery:{key}")
        except redis.RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from None
        return found.decode() if isinstance(found, bytes) else found


class FolderStore:
    """One small file a record in ``DIR/deliveries``, replaced atomically; its expiry is
    written in it (a reader treats an expired record as none, and removes it)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder / "deliveries"

    def write(self, records: list[tuple[str, str, float]]) -> None:
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            now = time.time()
            for key, text, keep in records:
                handle, temporary = tempfile.mkstemp(dir=self._folder, prefix=".record-")
                with os.fdopen(handle, "w") as out:
                    out.write(f"{now + keep:.3f} {text}")
                os.replace(temporary, self._folder / key)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    def read(self, key: str) -> str | None:
        path = self._folder / key
        try:
            until, _, text = path.read_text().partition(" ")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from None
        if float(until or 0) < time.time():
            path.unlink(missing_ok=True)
            return None
        return text


def store_from_url(url: str | None) -> ReplicaStore | None:
    """The store ``ELASTICIO_CREDENTIAL_LOCK_URL`` names; None when it is unset.

    Raises:
        ConfigError: an unsupported scheme or a file URL without a folder.
    """
    where = store_of(url)
    if where is None:
        return None
    return FolderStore(where) if isinstance(where, Path) else RedisStore(where)
