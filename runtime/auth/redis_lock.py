"""The credential lock for replicas on several machines: a lease in Redis.

* Taking it: ``SET key owner NX PX lease``, retried until the deadline; ``owner`` is a
  random token of this hold, so only its holder can renew or release it.
* Holding it: a thread renews the lease every third of its length (compare-and-pexpire), so
  a slow token endpoint never lets a second replica in; a holder that dies stops renewing
  and the lease runs out, so the others go on.
* Releasing it: compare-and-delete, so a holder whose lease ran out cannot release a lock
  another replica has taken since.
* The newest keys are kept beside the lock, sealed (runtime.auth.sealing), so replicas
  adopt them without a round trip to the platform and nobody who can read Redis can read
  or forge them.

Redis being unreachable is never a reason to refresh without the lock: the caller gets
``CredentialLockUnavailable``, which is retryable, within ``UNREACHABLE_GRACE`` seconds,
also from a Redis that accepts connections and never answers (each command is bounded, and
tried again once on a fresh connection).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runtime.auth.errors import CredentialLockUnavailable
from runtime.auth.locks import DEFAULT_LEASE, DEFAULT_WAIT, SharedKeys
from runtime.auth.sealing import Sealer, record_name
from runtime.log import get_logger

KEYS_TTL = 30 * 24 * 3600
"""Seconds the shared keys outlive their last refresh (a credential idle that long is
re-read from the platform)."""
UNREACHABLE_GRACE = 2.0
"""Seconds to keep trying a Redis that does not answer before giving up on this refresh."""
COMMAND_SECONDS = UNREACHABLE_GRACE / 2
"""Seconds one try of one command may take (connecting, or waiting for its answer); with
the one retry, a command that gets no answer fails within the grace."""
_POLL_FIRST, _POLL_MAX = 0.005, 0.05

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

_log = get_logger(__name__)


class RedisLock:
    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        lease: float = DEFAULT_LEASE,
        wait: float = DEFAULT_WAIT,
    ) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=COMMAND_SECONDS,
            socket_connect_timeout=COMMAND_SECONDS,
            # A dead pooled connection (Redis restarted) fails once and is replaced by the
            # retry; no health-check PING: one more round trip for a Redis that accepts and
            # never answers to hold past the grace.
            retry=Retry(NoBackoff(), 1),
        )
        self._where = _without_password(url)
        self._lease_ms = max(1, int(lease * 1000))
        self._wait = wait
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._sealer = Sealer(secret) if secret else None

    @property
    def where(self) -> str:
        return self._where

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        name = f"eio:credential:{key}:lock"
        owner = secrets.token_hex(16)
        self._acquire(name, owner)
        renewer = _Renewer(self, name, owner)
        try:
            yield
        finally:
            renewer.stop()
            try:
                self._release(keys=[name], args=[owner])
            except redis.RedisError as exc:
                # The lease ends by itself; the others wait at most that long.
                _log.warning("credential_lock_not_released", store=self._where, error=_why(exc))

    def _acquire(self, name: str, owner: str) -> None:
        started = time.monotonic()
        deadline = started + self._wait
        pause = _POLL_FIRST
        while True:
            try:
                # A SET whose answer was lost is tried again, and then finds its own lock.
                taken = self._client.set(name, owner, nx=True, px=self._lease_ms)
                if taken or self._client.get(name) == owner.encode():
                    waited = time.monotonic() - started
                    if waited > 0.05:
                        _log.info("credential_lock_waited", seconds=round(waited, 3))
                    return
            except redis.RedisError as exc:
                if time.monotonic() - started >= min(self._wait, UNREACHABLE_GRACE):
                    raise CredentialLockUnavailable(
                        f"the credential lock store at {self._where} cannot be reached "
                        f"({_why(exc)}), so the token was not refreshed (refreshing without it "
                        "could get the grant revoked when replicas share it); start Redis or "
                        "fix ELASTICIO_CREDENTIAL_LOCK_URL, then retry the message"
                    ) from None
            if time.monotonic() >= deadline:
                raise CredentialLockUnavailable(
                    f"another replica has held the credential lock in {self._where} for more "
                    f"than {self._wait:g} s, so this one did not refresh the token; the message "
                    "can be retried (a very slow token endpoint, or raise "
                    "ELASTICIO_CREDENTIAL_LOCK_TIMEOUT)"
                )
            time.sleep(pause)
            pause = min(_POLL_MAX, pause * 2)

    def renew(self, name: str, owner: str) -> bool:
        """Extend the lease; False when it is no longer ours (it ran out and was taken)."""
        return bool(self._renew(keys=[name], args=[owner, self._lease_ms]))

    @property
    def renew_every(self) -> float:
        return self._lease_ms / 3000

    def latest(self, key: str) -> SharedKeys | None:
        if self._sealer is None:
            return None
        name = record_name(key)
        try:
            sealed = self._client.get(name)
        except redis.RedisError as exc:
            _log.warning("shared_keys_unreadable", store=self._where, error=_why(exc))
            return None
        if not isinstance(sealed, bytes):
            return None
        record = self._sealer.open(sealed, name)
        if record is None:
            _log.warning("shared_keys_unreadable", store=self._where, error="cannot decrypt")
        return record

    def remember(self, key: str, shared: SharedKeys) -> bool:
        if self._sealer is None:
            return False
        name = record_name(key)
        try:
            self._client.set(name, self._sealer.seal(shared, name), ex=KEYS_TTL)
        except redis.RedisError as exc:
            _log.warning("shared_keys_not_written", store=self._where, error=_why(exc))
            return False
        return True

    def check(self) -> str | None:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            return f"{self._where} does not answer ({_why(exc)})"
        return None


class _Renewer:
    """Keeps one hold's lease alive from a thread of its own until stopped."""

    def __init__(self, lock: RedisLock, name: str, owner: str) -> None:
        self._lock = lock
        self._name = name
        self._owner = owner
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="credential-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._lock.renew_every):
            try:
                if not self._lock.renew(self._name, self._owner):
                    _log.warning("credential_lock_lost", store=self._lock.where)
                    return
            except redis.RedisError as exc:
                _log.warning("credential_lock_not_renewed", store=self._lock.where, error=_why(exc))

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _why(error: BaseException) -> str:
    text = str(error).split("\n")[0].strip()
    return text[:200] or type(error).__name__
