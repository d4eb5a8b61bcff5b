"""The credential lock ``ELASTICIO_CREDENTIAL_LOCK_URL`` names (runtime.auth.locks says
what each store is for). The stores stand above ``locks``; this module, above them all, is
the one that picks among them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from runtime.auth.file_lock import FileLock
from runtime.auth.locks import DEFAULT_LEASE, DEFAULT_WAIT, IN_PROCESS, CredentialLock
from runtime.errors import ConfigError


def lock_from_url(
    url: str | None,
    *,
    secret: str | None = None,
    lease: float = DEFAULT_LEASE,
    wait: float = DEFAULT_WAIT,
) -> CredentialLock:
    """The lock ``ELASTICIO_CREDENTIAL_LOCK_URL`` names.

    Args:
        url: ``redis://``, ``rediss://`` or ``file:///DIR``; empty or None for in-process.
        secret: seals the keys kept in the store (the message crypto password); without
            it the store is only a lock and replicas re-read the platform.
        lease: seconds a Redis lock lives without renewal.
        wait: seconds to wait for the lock before failing.

    Raises:
        ConfigError: an unsupported scheme or a file URL without a folder.
    """
    where = store_of(url)
    if where is None:
        return IN_PROCESS
    if isinstance(where, Path):
        return FileLock(where, wait=wait, secret=secret)
    from runtime.auth.redis_lock import RedisLock  # redis is imported only when used

    return RedisLock(where, secret=secret, lease=lease, wait=wait)


def store_of(url: str | None) -> str | Path | None:
    """Where ``ELASTICIO_CREDENTIAL_LOCK_URL`` points: a Redis URL, a folder, or None when
    unset (the replicas share the same store for their word about messages).

    Raises:
        ConfigError: an unsupported scheme or a file URL without a folder.
    """
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("redis", "rediss"):
        return url
    if scheme == "file":
        path = unquote(urlsplit(url).path)
        if not path:
            raise ConfigError(
                f"ELASTICIO_CREDENTIAL_LOCK_URL={url!r} names no folder: use file:///DIR"
            )
        return Path(path)
    raise ConfigError(
        f"ELASTICIO_CREDENTIAL_LOCK_URL has the scheme {scheme or 'none'!r}: use "
        "redis://HOST:PORT/DB for replicas on several machines or file:///DIR on one machine"
    )
