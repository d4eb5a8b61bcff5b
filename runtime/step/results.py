"""What a step's return value means, the same for a sync and an async step.

``None`` emits nothing; an iterator (a generator, ``iter([...])``) emits one ``data`` per
item as it comes (``None`` items skipped); an async iterator (an async generator) likewise;
a coroutine is awaited first and its value read by these rules; anything else is one
``data``. A list is one value, not several: the platform's messages are objects.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any


def is_awaited(result: Any) -> bool:
    """A coroutine to run first (a plain ``def`` may return one too)."""
    return inspect.iscoroutine(result)


def is_async_iterator(result: Any) -> bool:
    """Items that arrive asynchronously (an async generator)."""
    return hasattr(result, "__aiter__")


def data_items(result: Any) -> Iterator[Any]:
    """The payloads of the ``data`` events a (not awaited, not async) result stands for."""
    if result is None:
        return
    if type(result) is dict or not isinstance(result, Iterator):
        yield result
        return
    for item in result:
        if item is not None:
            yield item
