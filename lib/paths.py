"""Reading values out of JSON by a dotted path: ``customer.addresses[0].city``."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class PathError(LookupError):
    """The path does not lead to a value; the message says where it stopped."""


def split(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for name, index in _STEP.findall(path):
        steps.append(int(index) if index else name)
    return steps


def get(value: Any, path: str) -> Any:
    """The value at ``path`` ('' is the value itself).

    Raises:
        PathError: a step of the path is missing or the value there has no such field.
    """
    current = value
    walked = ""
    for step in split(path):
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                raise PathError(f"{walked or 'the value'} has no item [{step}]")
            current = current[step]
            walked += f"[{step}]"
        else:
            if not isinstance(current, dict) or step not in current:
                raise PathError(f"{walked or 'the value'} has no field {step!r}")
            current = current[step]
            walked += f".{step}" if walked else step
    return current


def get_or(value: Any, path: str, default: Any = None) -> Any:
    try:
        return get(value, path)
    except PathError:
        return default
