"""One refresh at a time per credential, shared by every session and thread in the process.

The order is lock → is the token still the one that failed? → refresh → save → use: a
thread that finds the token already replaced just uses the new one; the new keys are saved
(``on_keys``) before anyone uses them; a refresh that cannot be saved is kept aside and
saved before any further refresh, so a rotated refresh token is never lost; and after the
provider refused the refresh token, the credential fails fast for a while instead of
hammering the token endpoint.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runtime.auth.credentials import Credentials
from runtime.auth.errors import ReauthRequired
from runtime.log import get_logger

OnKeys = Callable[[dict[str, Any]], None]
"""Saves the merged keys after a refresh; must return before the new token is used."""

RefreshCall = Callable[[Credentials], Mapping[str, Any]]
"""Obtains a token response for a credential (the token endpoint, or a custom hook)."""

Reload = Callable[[], Credentials | None]
"""Re-reads the credential from its store, in case another process rotated it."""

FAIL_FAST_SECONDS = 60.0

_log = get_logger("runtime.auth")


def fingerprint(credentials: Credentials) -> str:
    """A short hash of the token material: logged instead of tokens, compared for changes."""
    material = f"{credentials.access_token}|{credentials.refresh_token}|{credentials.token}"
    return hashlib.sha256(material.encode()).hexdigest()[:12]


@dataclass
class Slot:
    """The live state of one credential."""

    current: Credentials
    origin: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    unsaved: Credentials | None = None
    refused: ReauthRequired | None = None
    refused_until: float = 0.0
    refreshes: int = 0


class CredentialCache:
    """Slots by credential key; a credential that changed outside (re-auth) gets a new slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, Slot] = {}

    def slot(self, key: str, credentials: Credentials) -> Slot:
        print_ = fingerprint(credentials)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or print_ not in (slot.origin, fingerprint(slot.current)):
                # New, or replaced outside this process (the user reconnected): start afresh.
                slot = Slot(current=credentials, origin=print_)
                self._slots[key] = slot
            return slot

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


CACHE = CredentialCache()


def refresh_once(
    slot: Slot,
    seen: Credentials,
    *,
    call: RefreshCall,
    on_keys: OnKeys,
    reload: Reload | None = None,
    rejected: bool = False,
) -> Credentials:
    """Replace the credential's token, unless another thread already did; return the new one.

    Args:
        slot: the credential's shared state.
        seen: the credential the caller's failed request was signed with.
        call: obtains the token response.
        on_keys: saves the merged keys; if it raises, the refresh is kept aside, not used.
        reload: re-reads the store first, in case another process already refreshed.
        rejected: the API refused the token just now, so a token found in the store is
            refreshed too rather than trusted on its expiry alone.

    Raises:
        ReauthRequired: the provider refused the refresh token (also for a while after).
        Exception: whatever ``call`` or ``on_keys`` raised.
    """
    with slot.lock:
        if slot.refused is not None and time.monotonic() < slot.refused_until:
            raise ReauthRequired(str(slot.refused))
        current = slot.current
        if fingerprint(current) != fingerprint(seen):
            return current
        if slot.unsaved is not None:
            return _save_and_use(slot, slot.unsaved, on_keys)
        stored = _reload_quietly(reload)
        if stored is not None and stored.refresh_token != current.refresh_token:
            # Another process refreshed and saved first: continue from its tokens rather
            # than replay a refresh token the provider has already rotated away.
            _log.info("credential_reloaded", fingerprint=fingerprint(stored))
            slot.current = current = stored
            now = datetime.now(UTC)
            fresh_enough = stored.expires_at and not stored.expires_within(5, now)
            if stored.access_token and fresh_enough and not rejected:
                return stored
        try:
            response = call(current)
        except ReauthRequired as refused:
            rotated = _rotated_elsewhere(reload, current)
            if rotated is None:
                slot.refused = refused
                slot.refused_until = time.monotonic() + FAIL_FAST_SECONDS
                raise
            # Another process used our refresh token a moment ago: go on from its tokens.
            slot.current = current = rotated
            try:
                response = call(current)
            except ReauthRequired:
                slot.refused = refused
                slot.refused_until = time.monotonic() + FAIL_FAST_SECONDS
                raise
        return _use_response(slot, current, response, on_keys)


ROTATION_WAITS = (0.0, 0.25, 0.5, 1.0)
"""How long to look for a rotation another process is saving (it saves right after its
token call, so the refused token's successor appears in the store within moments)."""


def _rotated_elsewhere(reload: Reload | None, refused: Credentials) -> Credentials | None:
    if reload is None:
        return None
    for wait in ROTATION_WAITS:
        time.sleep(wait)
        stored = _reload_quietly(reload)
        if stored is not None and stored.refresh_token not in (None, refused.refresh_token):
            _log.info("credential_reloaded", fingerprint=fingerprint(stored), after="invalid_grant")
            return stored
    return None


def _reload_quietly(reload: Reload | None) -> Credentials | None:
    if reload is None:
        return None
    try:
        return reload()
    except Exception as exc:  # noqa: BLE001 - a store we cannot read must not block a refresh
        _log.warning("credential_reload_failed", error=type(exc).__name__)
        return None


def _use_response(
    slot: Slot, current: Credentials, response: Mapping[str, Any], on_keys: OnKeys
) -> Credentials:
    fresh = current.merged(response, now=datetime.now(UTC))
    slot.refreshes += 1
    _log.info(
        "token_refreshed",
        fingerprint=fingerprint(fresh),
        previous=fingerprint(current),
        rotated=fresh.refresh_token != current.refresh_token,
    )
    return _save_and_use(slot, fresh, on_keys)


def _save_and_use(slot: Slot, fresh: Credentials, on_keys: OnKeys) -> Credentials:
    try:
        on_keys(fresh.to_keys())
    except BaseException:
        # The provider may have rotated the refresh token already: keep the new keys aside
        # and save them before anything else, rather than lose them.
        slot.unsaved = fresh
        raise
    slot.unsaved = None
    slot.current = fresh
    return fresh
