"""Sealing the keys a lock store keeps for the replicas: AES-GCM, bound to where they lie.

The key is derived from the message crypto password (which every replica of a flow has) and
kept apart from the message cipher's by its own label. Each record is bound to its name in
the store (the Redis key, the file's credential), so a record copied to another credential's
place does not open, and nobody who can read the store can read or forge the keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from runtime.auth.locks import SharedKeys

_LABEL = b"eio-runtime shared credential keys\0"
_NONCE = 12


class Sealer:
    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(_LABEL + secret.encode()).digest())

    def seal(self, shared: SharedKeys, name: str) -> bytes:
        record = {"keys": shared.keys, "replaced": list(shared.replaced), "saved": shared.saved}
        nonce = os.urandom(_NONCE)
        plaintext = json.dumps(record, separators=(",", ":")).encode()
        return nonce + self._aead.encrypt(nonce, plaintext, name.encode())

    def open(self, sealed: bytes, name: str) -> SharedKeys | None:
        """The record, or None when it does not open (another key, another name, damaged)."""
        try:
            plaintext = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], name.encode())
            record: Any = json.loads(plaintext)
        except (InvalidTag, ValueError):
            return None
        if not isinstance(record, dict):
            return None
        keys, replaced = record.get("keys"), record.get("replaced")
        if not isinstance(keys, dict) or not isinstance(replaced, list):
            return None
        return SharedKeys(keys, tuple(str(r) for r in replaced), record.get("saved") is True)


def record_name(key: str) -> str:
    """Where a credential's keys lie in a store (and what their seal is bound to)."""
    return f"eio:credential:{key}:keys"
