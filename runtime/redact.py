"""Keeping secrets out of logs, error events and exception messages.

Two rules, applied together: a value stored under a key whose name looks secret is replaced
whatever it is, and every secret value the runtime has seen (crypto password, platform API
key, tokens, client secrets) is registered here and cut out of any text it appears in.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Shorter values would match ordinary text and blank out whole log lines.
_MIN_SECRET_LENGTH = 4

_SECRET_NAME_SUFFIXES = (
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "key",
    "keys",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "signature",
    "assertion",
    "verifier",
)
# Names that end like a secret but never hold one; logging them helps operators.
_NOT_SECRET_NAMES = frozenset(
    {"idempotencykey", "partitionkey", "sortkey", "tokentype", "tokenurl"}
)


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def is_secret_name(name: str) -> bool:
    """True when a key of this name should never have its value shown."""
    normalised = _normalise(name)
    if normalised in _NOT_SECRET_NAMES or normalised.endswith("routingkey"):
        return False
    return normalised.endswith(_SECRET_NAME_SUFFIXES)


class SecretRegistry:
    """A thread-safe set of secret values, with one compiled pattern to cut them out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: object) -> None:
        """Register values as secret; non-strings and very short strings are ignored."""
        fresh = {
            v
            for v in values
            if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH and v not in self._values
        }
        if not fresh:
            return
        with self._lock:
            self._values |= fresh
            # Longest first, so a secret that contains another is cut out whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def add_from(self, data: object) -> None:
        """Register every value stored under a secret-looking key, at any depth."""
        self.add(*_secret_values(data))

    def scrub(self, text: str) -> str:
        """Return the text with every registered secret replaced."""
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(REDACTED, text)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None


def _secret_values(data: object) -> Iterable[str]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(key, str) and is_secret_name(key):
                if isinstance(value, str):
                    yield value
                else:
                    yield from _all_strings(value)
            else:
                yield from _secret_values(value)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _secret_values(item)


def _all_strings(data: object) -> Iterable[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, Mapping):
        for value in data.values():
            yield from _all_strings(value)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _all_strings(item)


SECRETS = SecretRegistry()
"""The process-wide registry: every module that learns a secret adds it here."""


def redact(data: Any, registry: SecretRegistry = SECRETS) -> Any:
    """Return a copy of a JSON-like value with secrets removed by key name and by value."""
    if isinstance(data, str):
        return registry.scrub(data)
    if isinstance(data, Mapping):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and is_secret_name(key) and value not in (None, "")
                else redact(value, registry)
            )
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact(item, registry) for item in data]
    return data
