"""What a worker keeps between messages: the step's data, its snapshot and refreshed keys."""

from __future__ import annotations

import copy
import threading
from typing import Any

ACCOUNT_FIELD = "_account"


class StepState:
    """Step data fetched once at start-up, plus what events changed since.

    The snapshot lives in memory, replaced by ``snapshot`` and merged by ``updateSnapshot``
    events, as in the Node.js sailor. Keys saved through ``updateKeys`` are laid over the
    step's configuration for every later message, so a rotated refresh token is what the
    next message uses even though the platform's step data still holds the old one.
    """

    def __init__(self, step_data: dict[str, Any]) -> None:
        config = step_data.get("config")
        self.config: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
        variables = step_data.get("variables")
        self.variables: dict[str, Any] = dict(variables) if isinstance(variables, dict) else {}
        self.is_passthrough = step_data.get("is_passthrough") is True
        snapshot = step_data.get("snapshot")
        self._snapshot: dict[str, Any] = dict(snapshot) if isinstance(snapshot, dict) else {}
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def account(self) -> str | None:
        value = self.config.get(ACCOUNT_FIELD)
        return str(value) if value not in (None, "") else None

    def cfg(self) -> dict[str, Any]:
        with self._lock:
            return _copy({**self.config, **self._keys})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return _copy(self._snapshot)

    def replace_snapshot(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self._snapshot = copy.deepcopy(snapshot)

    def merge_snapshot(self, delta: dict[str, Any]) -> None:
        with self._lock:
            self._snapshot.update(copy.deepcopy(delta))

    def remember_keys(self, keys: dict[str, Any]) -> None:
        with self._lock:
            self._keys.update(copy.deepcopy(keys))


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    # Steps get their own copy, as in the Node.js sailor; an empty one costs nothing.
    return json_copy(value) if value else {}


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """A deep copy of what came as JSON (no part shared twice): its containers are copied
    by hand, ten times cheaper than ``copy.deepcopy``'s memo, for every message."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)
