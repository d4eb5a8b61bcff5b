"""What handing an event over may have to wait for, so that sync and async steps share it.

Routing an event (runtime.worker.dispatch) is a generator that yields a ``Wait`` whenever
it must pause: a rate limit's turn, a window of unconfirmed publishes, a blocking save. A
sync step's thread blocks on each (``block_on``); an async step's run awaits each
(``Wait.wait``), so the loop goes on with other messages meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterator
from typing import Protocol

Route = Callable[..., "Iterator[Wait] | None"]
"""Hands one event over; a generator of waits when it may have to wait, else None."""

# Blocking calls made for async steps (saving keys, publishing and waiting for the confirm)
# get threads of their own: never those a refresh holds while its keys are saved.
BLOCKING = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="blocking")


class Wait(Protocol):
    def block(self) -> None:
        """Wait on the calling thread."""
        ...

    async def wait(self) -> None:
        """Wait without blocking the event loop."""
        ...


class Pause:
    """A rate limit's turn: ``seconds`` to wait."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def block(self) -> None:
        time.sleep(self.seconds)

    async def wait(self) -> None:
        await asyncio.sleep(self.seconds)


class Blocking:
    """A call that blocks (an HTTP save): run here, or on a thread for the loop."""

    __slots__ = ("call",)

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call

    def block(self) -> None:
        self.call()

    async def wait(self) -> None:
        await asyncio.get_running_loop().run_in_executor(BLOCKING, self.call)


def block_on(waits: Iterator[Wait] | None) -> None:
    """Drive a route to its end on this thread."""
    if waits is not None:
        for wait in waits:
            wait.block()
