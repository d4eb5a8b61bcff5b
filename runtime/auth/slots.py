"""One refresh at a time per credential: across threads, processes and machines.

For a request whose token was refused (or is due), in this order::

    in-process single flight (one lock per credential in this process)
      → another thread here already replaced the token that failed? use its tokens
      → the cross-process lock (runtime.auth.locks), held until the new keys are saved
          → re-read the stored credential: the lock store's copy, else the credential's
            own store (the platform, a credentials file)
          → another replica already replaced the token that failed? use its tokens
            (refreshed again only if those are refused too)
          → else refresh → keep the keys for the other replicas (the lock store's sealed
            copy) → save them everywhere the keys go (each store compares what it holds with
            what they replace) → use them
      → unlock

Keys are used only once they are durable: in the lock store's copy, or taken by their own
store (the platform). A refresh that reached neither is kept aside and saved before any
further refresh, so a rotated refresh token is never lost; keys adopted from the lock store
that the platform never got (their refresher died, or the platform was down) are saved
there by the replica that adopts them. After the provider refused the refresh token, the
credential fails fast for a while instead of hammering the token endpoint.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runtime import metrics
from runtime.auth.cache import (
    Refreshed,
    Reload,
    Sharing,
    Slot,
    fingerprint,
)
from runtime.auth.credentials import Credentials, KeysUpdate, keys_version
from runtime.auth.errors import (
    ClientMisconfigured,
    CredentialError,
    CredentialLockUnavailable,
    KeysConflict,
    ReauthRequired,
    TokenEndpointUnavailable,
)
from runtime.auth.locks import REMEMBERED_VERSIONS, SharedKeys
from runtime.log import get_logger
from runtime.network import host_of

OnKeys = Callable[[dict[str, Any]], None]
"""Saves the merged keys after a refresh; must return before the new token is used."""

RefreshCall = Callable[[Credentials], Mapping[str, Any]]
"""Obtains a token response for a credential (the token endpoint, or a custom hook)."""

FAIL_FAST_SECONDS = 60.0

_log = get_logger(__name__)


def refresh_once(
    slot: Slot,
    seen: Credentials,
    *,
    call: RefreshCall,
    on_keys: OnKeys,
    sharing: Sharing,
    min_validity: float = 0.0,
) -> Refreshed:
    """Replace the credential's token unless a thread or replica already did; return the new one.

    Args:
        slot: the credential's state in this process.
        seen: the credential the caller's request was signed with (or is due to be).
        call: obtains the token response.
        on_keys: saves the merged keys; if it raises, the refresh is kept aside, not used.
        sharing: the lock and the store shared with other processes.
        min_validity: seconds a stored access token must still be valid to be used as is
            (a token already expired by its clock is not worth a request).

    Raises:
        ReauthRequired: the provider refused the refresh token (also for a while after).
        CredentialLockUnavailable: the cross-process lock could not be had; nothing ran.
        Exception: whatever ``call`` or ``on_keys`` raised.
    """
    with slot.lock:
        if slot.refused is not None and time.monotonic() < slot.refused_until:
            raise ReauthRequired(str(slot.refused))
        if fingerprint(slot.current) != fingerprint(seen):
            return Refreshed(slot.current, slot.minted)
        with contextlib.ExitStack() as held:
            waiting = time.monotonic()
            try:
                held.enter_context(sharing.lock.hold(sharing.key))
            except CredentialLockUnavailable as exc:
                _log.error(
                    "credential_lock_failed",
                    store=sharing.lock.where,
                    elapsed=round(time.monotonic() - waiting, 3),
                    reason=str(exc),
                )
                raise
            metrics.lock_waited(time.monotonic() - waiting)
            return _Refresh(slot, call, on_keys, sharing).under_lock(seen, min_validity)


@dataclass(frozen=True)
class _Refresh:
    """One refresh of one credential, from inside both locks."""

    slot: Slot
    call: RefreshCall
    on_keys: OnKeys
    sharing: Sharing

    def under_lock(self, seen: Credentials, min_validity: float) -> Refreshed:
        slot = self.slot
        if slot.unsaved is not None:
            fresh, replaced = slot.unsaved
            return self._save_and_use(fresh, replaced, None)
        stored, shared = self._stored(seen)
        base = seen
        if stored is not None and fingerprint(stored) != fingerprint(seen):
            _log.info("credential_reloaded", fingerprint=fingerprint(stored))
            if shared is not None and not shared.saved:
                adopted = self._save_adopted(stored, seen, shared)
                if adopted is not None:
                    return adopted
            if _usable(stored, min_validity):
                slot.take(stored, minted=False)
                return Refreshed(stored, minted=False)
            base = stored
        return self._refresh(base, seen, shared.replaced if shared is not None else ())

    def _stored(self, seen: Credentials) -> tuple[Credentials | None, SharedKeys | None]:
        """The newest stored credential, and the lock store's record when it came from there
        (it names the credentials it is known to succeed)."""
        shared = self.sharing.lock.latest(self.sharing.key)
        latest = _parse_quietly(shared.keys) if shared is not None else None
        if shared is not None and latest is not None:
            ours = fingerprint(seen)
            if fingerprint(latest) == ours or ours in shared.replaced:
                return latest, shared
            # Not a successor of ours: another grant (the user reconnected) or an old
            # record; the credential's own store decides.
        stored = _reload_quietly(self.sharing.reload)
        if stored is not None and _older(stored, seen):
            return None, None
        return stored, None

    def _save_adopted(
        self, stored: Credentials, seen: Credentials, shared: SharedKeys
    ) -> Refreshed | None:
        """Another replica's keys that their own store never got: save them there first.

        Returns what to use instead when that store holds others (the user reconnected, or
        a third replica got there first); None to go on with ``stored``.
        """
        update = KeysUpdate(
            stored.to_keys(), replaces=keys_version(seen), kept_by=self.sharing.lock.where
        )
        try:
            self.on_keys(update)
        except BaseException as exc:
            if not _conflict(exc):
                raise
            self._yield_to_stored(stored, shared.replaced)
            return Refreshed(self.slot.current, minted=False)
        if not update.pending:
            self.sharing.lock.remember(
                self.sharing.key, SharedKeys(shared.keys, shared.replaced, saved=True)
            )
        return None

    def _refresh(self, base: Credentials, seen: Credentials, chain: tuple[str, ...]) -> Refreshed:
        slot = self.slot
        started = time.monotonic()
        try:
            response = self.call(base)
        except BaseException as exc:
            elapsed = time.monotonic() - started
            metrics.token_refresh(_outcome(exc), elapsed)
            if isinstance(exc, Exception):
                _log_refresh_failed(base, exc, elapsed)
            if isinstance(exc, ReauthRequired):
                return self._refused(exc, base, seen, chain)
            raise
        metrics.token_refresh("ok", time.monotonic() - started)
        fresh = base.merged(response, now=datetime.now(UTC))
        # No second try with a refresh token found elsewhere: nobody else can have used
        # ours while we hold the lock, so the refusal is the provider's verdict on the
        # grant; with reuse detection, presenting one more token would only revoke what
        # is left. A credential the user has reconnected since is taken as is.
        slot.refreshes += 1
        _log.info(
            "token_refreshed",
            fingerprint=fingerprint(fresh),
            previous=fingerprint(base),
            rotated=fresh.refresh_token != base.refresh_token,
        )
        lineage = tuple(dict.fromkeys((fingerprint(base), fingerprint(seen), *chain)))
        return self._save_and_use(fresh, base, lineage)

    def _refused(
        self, refused: ReauthRequired, base: Credentials, seen: Credentials, chain: tuple[str, ...]
    ) -> Refreshed:
        # No second try with a refresh token found elsewhere: nobody else can have used
        # ours while we hold the lock, so the refusal is the provider's verdict on the
        # grant; with reuse detection, presenting one more token would only revoke what
        # is left. A credential the user has reconnected since is taken as is.
        reconnected = _reload_quietly(self.sharing.reload)
        known = (fingerprint(base), fingerprint(seen), *chain)
        if reconnected is not None and fingerprint(reconnected) not in known:
            _log.info("credential_reconnected", fingerprint=fingerprint(reconnected))
            self.slot.take(reconnected, minted=False)
            return Refreshed(reconnected, minted=False)
        self.slot.refused = refused
        self.slot.refused_until = time.monotonic() + FAIL_FAST_SECONDS
        raise refused

    def _save_and_use(
        self, fresh: Credentials, replaced: Credentials, lineage: tuple[str, ...] | None
    ) -> Refreshed:
        """Save new keys, then use them. ``lineage`` is None when they are already shared."""
        slot, sharing = self.slot, self.sharing
        record = SharedKeys(fresh.to_keys(), lineage[:REMEMBERED_VERSIONS]) if lineage else None
        # The lock store first: if this process dies before the platform has the keys, the
        # other replicas still find them there instead of replaying a rotated token.
        kept = record is not None and sharing.lock.remember(sharing.key, record)
        update = KeysUpdate(
            fresh.to_keys(),
            replaces=keys_version(replaced),
            kept_by=sharing.lock.where if kept else None,
        )
        try:
            self.on_keys(update)
        except BaseException as exc:
            if _conflict(exc):
                self._yield_to_stored(fresh, lineage or (fingerprint(replaced),))
            else:
                # The provider may have rotated the refresh token already: keep the new keys
                # aside and save them before anything else, rather than lose them.
                slot.unsaved = (fresh, replaced)
            raise
        if kept and record is not None and not update.pending:
            sharing.lock.remember(sharing.key, SharedKeys(record.keys, record.replaced, True))
        slot.unsaved = None
        slot.take(fresh, minted=True)
        return Refreshed(fresh, minted=True)

    def _yield_to_stored(self, fresh: Credentials, lineage: tuple[str, ...]) -> None:
        """The store holds keys saved meanwhile: theirs stay, and everyone moves to them."""
        self.slot.unsaved = None
        stored = _reload_quietly(self.sharing.reload)
        _log.warning("keys_conflict", kept=fingerprint(stored) if stored else None)
        if stored is None:
            return
        self.slot.take(stored, minted=False)
        successors = (fingerprint(fresh), *lineage)[:REMEMBERED_VERSIONS]
        self.sharing.lock.remember(self.sharing.key, SharedKeys(stored.to_keys(), successors))


def _usable(credentials: Credentials, min_validity: float) -> bool:
    if not credentials.access_token:
        return False
    return not credentials.expires_within(min_validity, datetime.now(UTC))


def _older(stored: Credentials, seen: Credentials) -> bool:
    """A store that lags behind this process (its save went elsewhere first) is not newer."""
    return (
        stored.expires_at is not None
        and seen.expires_at is not None
        and stored.expires_at < seen.expires_at
    )


def _conflict(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeysConflict):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _parse_quietly(keys: Mapping[str, Any]) -> Credentials | None:
    try:
        return Credentials.parse(keys)
    except CredentialError:
        return None


def _reload_quietly(reload: Reload | None) -> Credentials | None:
    if reload is None:
        return None
    try:
        return reload()
    except Exception as exc:  # noqa: BLE001 - a store we cannot read must not block a refresh
        _log.warning("credential_reload_failed", error=type(exc).__name__)
        return None


def _log_refresh_failed(base: Credentials, error: Exception, elapsed: float) -> None:
    """One line per failed token call, so the operator reading the log sees it too."""
    kind = "misconfigured" if isinstance(error, ClientMisconfigured) else _outcome(error)
    level = _log.warning if kind == "transient" else _log.error
    level(
        "token_refresh_failed",
        host=host_of(base.token_url) if base.token_url else None,
        kind=kind,
        elapsed=round(elapsed, 3),
        reason=str(error)[:500],
    )


def _outcome(error: BaseException) -> metrics.RefreshOutcome:
    if isinstance(error, ReauthRequired):
        return "invalid_grant"
    if isinstance(error, TokenEndpointUnavailable):
        return "transient"
    return "error"
