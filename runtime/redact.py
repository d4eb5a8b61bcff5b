"""Keeping secrets out of logs, error events and exception messages.

Two rules, applied together: a value stored under a key whose name looks secret is replaced
whatever it is, and every secret value the runtime has seen (crypto password, platform API
key, tokens, client secrets) is registered here and cut out of any text it appears in.

The registry stays small, so that checking a log line costs the same after a million
refreshes as after one: the process's own configuration is pinned for good, and everything
else (tokens, credentials' fields) is remembered while it is in use. Each registration
renews it; one not renewed for ``REMEMBER_SECONDS`` is forgotten, and only the newest
``REMEMBER_MAX`` are kept. A credential in use is registered again for every message (its
cfg is parsed each time), so what can still appear stays, and tokens rotated away leave.
A text is searched once for all values (plain substring searches in C, no regular
expression rebuilt per registration); only a text that holds one is rewritten.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

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


@functools.lru_cache(maxsize=4096)  # log records repeat the same few dozen keys
def is_secret_name(name: str) -> bool:
    """True when a key of this name should never have its value shown."""
    normalised = _normalise(name)
    if normalised in _NOT_SECRET_NAMES or normalised.endswith("routingkey"):
        return False
    return normalised.endswith(_SECRET_NAME_SUFFIXES)


REMEMBER_SECONDS = 3600.0
REMEMBER_MAX = 96


class SecretRegistry:
    """A thread-safe, bounded set of secret values, cut out of any text they appear in."""

    def __init__(
        self, *, remember_seconds: float = REMEMBER_SECONDS, remember_max: int = REMEMBER_MAX
    ) -> None:
        self._lock = threading.Lock()
        self._pinned: dict[str, None] = {}
        self._recent: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._remember_seconds = remember_seconds
        self._remember_max = remember_max
        self._longest_first: tuple[str, ...] = ()
        self._changed = False

    def add(self, *values: object) -> None:
        """Register values while they are in use; non-strings and very short ones are ignored."""
        now = time.monotonic()
        with self._lock:
            for value in values:
                if not _is_candidate(value) or value in self._pinned:
                    continue
                if value in self._recent:
                    self._recent.move_to_end(value)
                else:
                    self._changed = True
                self._recent[value] = now
            self._forget(now)

    def pin(self, *values: object) -> None:
        """Register the process's own secrets (settings): never forgotten."""
        with self._lock:
            for value in values:
                if _is_candidate(value) and value not in self._pinned:
                    self._pinned[value] = None
                    self._recent.pop(value, None)
                    self._changed = True

    def add_from(self, data: object) -> None:
        """Register every value stored under a secret-looking key, at any depth."""
        self.add(*_secret_values(data))

    def __len__(self) -> int:
        return len(self._pinned) + len(self._recent)

    def found_in(self, text: str) -> tuple[str, ...]:
        """The registered values that occur in ``text``, longest first."""
        values = self._values()
        return tuple(value for value in values if value in text) if values else ()

    def scrub(self, text: str) -> str:
        """Return the text with every registered secret replaced."""
        return _replace(text, self.found_in(text))

    def clear(self) -> None:
        with self._lock:
            self._pinned.clear()
            self._recent.clear()
            self._changed = True

    def _values(self) -> tuple[str, ...]:
        if self._changed:
            with self._lock:
                if self._changed:
                    # Longest first, so a secret that contains another is cut out whole.
                    everything = [*self._pinned, *self._recent]
                    self._longest_first = tuple(sorted(everything, key=len, reverse=True))
                    self._changed = False
        return self._longest_first

    def _forget(self, now: float) -> None:
        recent = self._recent
        while recent and (
            len(recent) > self._remember_max
            or next(iter(recent.values())) < now - self._remember_seconds
        ):
            recent.popitem(last=False)
            self._changed = True


def _is_candidate(value: object) -> TypeGuard[str]:
    # Shorter values would match ordinary text and blank out whole log lines.
    return isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH


def _replace(text: str, found: tuple[str, ...]) -> str:
    for value in found:
        text = text.replace(value, REDACTED)
    return text


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
    named = _redact_names(data)
    texts: list[str] = []
    _collect_strings(named, texts)
    found = registry.found_in("\n".join(texts)) if texts else ()
    return _redact_values(named, found) if found else named


# The checks below test the plain types first: log records are dicts of strings and
# numbers, and an isinstance check against an abstract base class costs ten times more.


def _redact_names(data: Any) -> Any:
    kind = type(data)
    if kind is str or kind is int or data is None:
        return data
    if kind is dict or isinstance(data, Mapping):
        return {
            key: (
                REDACTED
                if type(key) is str and is_secret_name(key) and value not in (None, "")
                else _redact_names(value)
            )
            for key, value in data.items()
        }
    if kind is list or kind is tuple:
        return [_redact_names(item) for item in data]
    return data


def _collect_strings(data: Any, into: list[str]) -> None:
    kind = type(data)
    if kind is str:
        into.append(data)
    elif kind is dict:
        for value in data.values():
            _collect_strings(value, into)
    elif kind is list:
        for item in data:
            _collect_strings(item, into)


def _redact_values(data: Any, found: tuple[str, ...]) -> Any:
    kind = type(data)
    if kind is str:
        return _replace(data, found)
    if kind is dict:
        return {key: _redact_values(value, found) for key, value in data.items()}
    if kind is list:
        return [_redact_values(item, found) for item in data]
    return data
