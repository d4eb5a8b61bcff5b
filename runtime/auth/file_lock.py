"""The credential lock for replicas on one machine: an OS file lock (``flock``) per credential.

The kernel releases the lock when its holder dies, however it dies, so a crashed refresh
never blocks the others. Threads of one process are already serialised per credential
before they get here; ``flock`` on separate descriptors also excludes them, so two slots of
one credential in one process cannot refresh at once either.

Given a secret, the newest keys of each credential lie beside its lock file, sealed
(``credential-….keys``, mode 0600, replaced atomically and synced to disk), so a replica
that died before the platform saved its keys leaves them where the next one looks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from runtime.auth.errors import CredentialLockUnavailable
from runtime.auth.locks import DEFAULT_WAIT, SharedKeys
from runtime.auth.sealing import Sealer, record_name
from runtime.log import get_logger

_POLL_FIRST, _POLL_MAX = 0.005, 0.05
RECORD_LIMIT = 1024 * 1024

_log = get_logger(__name__)


class FileLock:
    """Lock files ``{prefix}{credential}.lock`` in one folder."""

    def __init__(
        self,
        folder: Path,
        *,
        prefix: str = "credential-",
        wait: float = DEFAULT_WAIT,
        secret: str | None = None,
    ) -> None:
        self._folder = folder
        self._prefix = prefix
        self._wait = wait
        self._sealer = Sealer(secret) if secret else None

    @property
    def where(self) -> str:
        return f"file://{self._folder}"

    def path_for(self, key: str, suffix: str = ".lock") -> Path:
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:48]
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self._folder / f"{self._prefix}{readable}-{digest}{suffix}"

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        path = self.path_for(key)
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CredentialLockUnavailable(
                f"cannot open the credential lock file {path} ({exc.strerror}); nothing was "
                "refreshed: make the folder of ELASTICIO_CREDENTIAL_LOCK_URL writable"
            ) from None
        try:
            self._acquire(handle)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

    def _acquire(self, handle: int) -> None:
        deadline = time.monotonic() + self._wait
        pause = _POLL_FIRST
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CredentialLockUnavailable(
                        f"another process has held the credential lock in {self.where} for "
                        f"more than {self._wait:g} s, so this one did not refresh the token; "
                        "the message can be retried (a very slow token endpoint, or raise "
                        "ELASTICIO_CREDENTIAL_LOCK_TIMEOUT)"
                    ) from None
                time.sleep(pause)
                pause = min(_POLL_MAX, pause * 2)

    def latest(self, key: str) -> SharedKeys | None:
        if self._sealer is None:
            return None
        path = self.path_for(key, ".keys")
        try:
            with path.open("rb") as handle:
                sealed = handle.read(RECORD_LIMIT + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.warning("shared_keys_unreadable", store=self.where, error=exc.strerror)
            return None
        record = self._sealer.open(sealed, record_name(key))
        if record is None:
            _log.warning("shared_keys_unreadable", store=self.where, error="cannot decrypt")
        return record

    def remember(self, key: str, shared: SharedKeys) -> bool:
        if self._sealer is None:
            return False
        path = self.path_for(key, ".keys")
        sealed = self._sealer.seal(shared, record_name(key))
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(handle, sealed)
                os.fsync(handle)  # a machine that loses power must not lose the keys
            finally:
                os.close(handle)
            os.replace(temporary, path)
        except OSError as exc:
            _log.warning("shared_keys_not_written", store=self.where, error=exc.strerror)
            temporary.unlink(missing_ok=True)
            return False
        return True

    def check(self) -> str | None:
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create {self._folder} ({exc.strerror})"
        if not os.access(self._folder, os.W_OK):
            return f"{self._folder} is not writable"
        return None
