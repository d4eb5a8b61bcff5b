"""Message ids: version-4 UUIDs, made without a system call each.

``uuid.uuid4()`` reads 16 bytes from ``os.urandom`` every time, which on the worker's hot
path cost more than encrypting a small message. Message ids need to be unique, not secret,
so a Mersenne Twister seeded from the OS is enough: once at import, and again in every
child after ``fork``, which would otherwise repeat its parent's ids.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))  # noqa: S311 - unique, not secret
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))
_VERSION_4 = 0x4000 << 64
_VARIANT_RFC = 0x8000 << 48
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


def new_id() -> str:
    """A random UUID, version 4, in its usual text form."""
    value = (_random.getrandbits(128) & _CLEAR) | _VERSION_4 | _VARIANT_RFC
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
