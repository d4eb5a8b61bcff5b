"""The one long-lived event loop that async steps run on, on a thread of its own.

Hundreds of messages in flight are hundreds of tasks here, not threads. Work comes in from
other threads with ``hand_over`` (deliveries arrive in bursts: one wake-up of the loop
serves a whole burst) or ``run`` (a hook, waited for).

An async step's broker connections live on this loop too (runtime.worker.amqp.io): a
delivery, the publishes of its step and their confirms never cross a thread. A step that
blocks the loop (``time.sleep``, a sync HTTP call inside ``async def``) holds up every
message on it; the broker's heartbeat guard keeps its connections alive meanwhile. The
loop beats every ``BEAT`` seconds; a watcher thread notices a beat late by more than
``blocked_after`` seconds and logs ``event_loop_blocked`` once, naming the step, the lag
and where its code is, then ``event_loop_resumed`` with the whole time when it goes on.
``blocked_for`` lets a liveness probe say the worker needs restarting.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from runtime.log import get_logger

BEAT = 0.1
BLOCKED_AFTER = 1.0
"""Seconds the loop may be late before it counts as blocked: a step's CPU work in one go
(a large JSONata mapping, say) stays well below it."""

_T = TypeVar("_T")
_log = get_logger(__name__)
_RUNTIME = str(Path(__file__).resolve().parent.parent)
_LIBRARIES = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib")})


class StepLoop:
    """An asyncio loop running on its own thread until ``stop``."""

    def __init__(self, *, step: str = "", blocked_after: float = BLOCKED_AFTER) -> None:
        self.loop = asyncio.new_event_loop()
        self._step = step
        self._blocked_after = blocked_after
        self._thread = threading.Thread(target=self._run, name="steps-loop", daemon=True)
        self._handed: collections.deque[Callable[[], object]] = collections.deque()
        self._scheduled = False
        self._scheduling = threading.Lock()
        self._beat = time.monotonic()
        self._blocked_since: float | None = None
        self._stopping = threading.Event()

    def start(self) -> StepLoop:
        started = threading.Event()
        self.loop.call_soon(started.set)
        self._thread.start()
        started.wait()
        threading.Thread(target=self._watch, name="steps-loop-watch", daemon=True).start()
        return self

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def hand_over(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the loop: now when called on it, else soon (cheap in bursts)."""
        if threading.current_thread() is self._thread:
            callback()
            return
        self._handed.append(callback)
        with self._scheduling:
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._drain)

    def run(self, work: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run a coroutine on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    @property
    def blocked_for(self) -> float:
        """Seconds the loop has been blocked by a step, or 0."""
        since = self._blocked_since
        return time.monotonic() - since if since is not None else 0.0

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (tasks still running are cancelled) and its thread."""
        if not self._thread.is_alive():
            return
        self._stopping.set()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    # --- on the loop's thread --------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._heartbeat)
        try:
            self.loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        self.loop.call_later(BEAT, self._heartbeat)

    def _drain(self) -> None:
        with self._scheduling:
            self._scheduled = False
        handed = self._handed
        while handed:
            handed.popleft()()

    # --- on the watcher's thread -----------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(BEAT):
            late = time.monotonic() - self._beat - BEAT
            if late > self._blocked_after and self._blocked_since is None:
                self._blocked_since = self._beat + BEAT
                _log.warning(
                    "event_loop_blocked",
                    step=self._step,
                    lag=round(late, 2),
                    where=self._where(),
                    note="an async step is blocking the event loop (time.sleep, or a sync "
                    "call inside async def): every message on it waits; await instead, or "
                    "run the blocking call with asyncio.to_thread",
                )
            elif late <= BEAT and self._blocked_since is not None:
                _log.warning(
                    "event_loop_resumed",
                    step=self._step,
                    blocked=round(self._beat - self._blocked_since, 2),
                )
                self._blocked_since = None

    def _where(self) -> str | None:
        """The blocking code: the innermost frame of the component, not of a library."""
        frame: FrameType | None = sys._current_frames().get(self._thread.ident or 0)
        innermost = frame
        while frame is not None:
            file = frame.f_code.co_filename
            if not file.startswith((_RUNTIME, *_LIBRARIES)) and not file.startswith("<"):
                break
            frame = frame.f_back
        chosen = frame or innermost
        if chosen is None:
            return None
        return f"{chosen.f_code.co_filename}:{chosen.f_lineno} in {chosen.f_code.co_name}"
