"""Reading the JSON files a user points the command line at, with errors that say which."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from runtime import bounded
from runtime.errors import ConfigError


def read_json(path: str | None, *, what: str, default: Any = None) -> Any:
    """The JSON in a file (``-`` is stdin), or ``default`` when no path was given.

    Raises:
        ConfigError: the file is missing, unreadable or not JSON.
    """
    if path is None:
        return default
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} file {path!r}: {exc}") from None
    try:
        return bounded.loads(text, what=f"{what} file {path!r}")
    except bounded.OutOfBounds as exc:
        raise ConfigError(str(exc)) from None


def read_json_object(path: str | None, *, what: str) -> dict[str, Any]:
    """Like ``read_json``, for files that must hold a JSON object; ``{}`` when no path."""
    value = read_json(path, what=what, default={})
    if not isinstance(value, dict):
        raise ConfigError(f"{what} file {path!r} must hold a JSON object")
    return value
