"""Running one sync step on one message: the events it emits, in order, and nothing unbounded.

Each event goes to ``handle`` as the step emits it, on the step's own thread, and the step's
``ctx.emit`` returns only once ``handle`` has returned: a worker's publish confirm is
back-pressure on the step, and a failure to deliver is raised inside the step (after it was
reported as one ``error`` event). What a returned value emits is
runtime.step.results (the same for async steps); an exception is one ``error`` event, and
``end`` follows automatically; only the first ``end`` counts (runtime.step.run_state).

A step that runs past its time limit is stopped from another thread: its run is closed
(further emits raise ``StepCancelled``), an ``error`` event says what happened, ``end``
follows, and ``StepCancelled`` is raised inside the step's thread.

``execute`` runs an ``async def`` step too, on an event loop of its own for the call
(runtime.step.async_run); the worker runs those on its one long-lived loop instead.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

from runtime.errors import StepCancelled
from runtime.step.async_run import run_on_own_loop
from runtime.step.bridge import run_to_end
from runtime.step.context import Context, release
from runtime.step.events import Event
from runtime.step.results import data_items, is_async_iterator, is_awaited
from runtime.step.run_state import (
    DeliveryFailed,
    Handle,
    Outcome,
    RunState,
    StepCall,
    StepTimedOut,
)
from runtime.step.runners import RUNNERS, Job, RunnerPool

__all__ = ["DeliveryFailed", "Handle", "Outcome", "StepRun", "StepTimedOut", "execute"]

# Guards only the "finished" flag and its lazily made Event: never held while blocking.
_FINISHING = threading.Lock()
BLOCKED_GRACE = 10.0
"""Seconds past its time limit an async step that blocks its event loop is given."""


class StepRun:
    """One sync step on one message. ``run_here`` runs it; ``stop`` ends it early."""

    def __init__(self, call: StepCall, handle: Handle) -> None:
        self._call = call
        self._cfg = dict(call.cfg)
        self._snapshot = dict(call.snapshot)
        self._handle = handle
        self._lock = threading.RLock()
        self._state = RunState(call.step)
        self._finished = False
        self._finished_event: threading.Event | None = None
        self.outcome = self._state.outcome
        self.ctx = call.context(Context, self._deliver)

    def run_here(self) -> Outcome:
        """Run the step on the calling thread; returns once ``end`` was handled."""
        error: BaseException | None = None
        try:
            result = self._call.process(self.ctx, self._call.message, self._cfg, self._snapshot)
            _emit_result(self.ctx, result)
        except StepCancelled:
            return self.outcome
        except BaseException as exc:  # noqa: BLE001 - every failure of step code is an event
            error = exc
        try:
            self._finish(error)
        except StepCancelled:
            pass
        return self.outcome

    def stop(self, timeout: float | None) -> bool:
        """End the run now because it took too long; False if it had already finished."""
        with self._lock:
            final = self._state.stopping(self.ctx, timeout)
            if final is None:
                return False
            self._close_with(final)
        return True

    def wait_finished(self, timeout: float | None) -> bool:
        """Wait until ``end`` was handled (by the step's thread or by ``stop``)."""
        with _FINISHING:
            if self._finished:
                return True
            if self._finished_event is None:
                self._finished_event = threading.Event()
            event = self._finished_event
        return event.wait(timeout)

    # --- events ------------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        with self._lock:
            if self._state.closed:
                raise StepCancelled
            failure = self._receive(event)
        if failure is not None:
            raise failure

    def _finish(self, error: BaseException | None) -> None:
        with self._lock:
            if self._state.closed:
                raise StepCancelled
            self._close_with(self._state.closing(error))

    def _close_with(self, final: list[Event]) -> None:
        try:
            for event in final:
                if self._state.admit(event):
                    self._handle(event)
        except Exception as exc:  # noqa: BLE001 - the caller decides what an undelivered end means
            self.outcome.undelivered = exc
        finally:
            release(self.ctx)
            with _FINISHING:
                self._finished = True
                finished = self._finished_event
            if finished is not None:
                finished.set()

    def _receive(self, event: Event) -> BaseException | None:
        if not self._state.admit(event):
            return None
        try:
            self._handle(event)
        except Exception as exc:  # noqa: BLE001 - turned into an error event, once
            failure, report = self._state.failed(event, exc)
            try:
                if report is not None:
                    self._handle(report)
            except Exception as again:  # noqa: BLE001
                self.outcome.undelivered = again
            return failure
        return None


def execute(
    call: StepCall,
    handle: Handle,
    *,
    timeout: float | None = None,
    runners: RunnerPool = RUNNERS,
) -> Outcome:
    """Run ``process(ctx, msg, cfg, snapshot)`` and hand every event it emits to ``handle``.

    The step runs on a runner thread (an async step on an event loop there); this call
    returns when it ended, or when ``timeout`` seconds passed, in which case the step is
    stopped and an ``error`` event says so. ``handle`` is called one event at a time,
    ``end`` last.
    """
    if call.is_async:
        return _execute_async(call, handle, timeout, runners)
    run = StepRun(call, handle)
    job = runners.submit(run.run_here)
    if not run.wait_finished(timeout) and run.stop(timeout):
        job.cancel()
    run.wait_finished(None)
    return run.outcome


def _execute_async(
    call: StepCall, handle: Handle, timeout: float | None, runners: RunnerPool
) -> Outcome:
    ended = threading.Event()
    outcome: list[Outcome] = []

    def run() -> None:
        try:
            outcome.append(run_on_own_loop(call, handle, timeout))
        finally:
            ended.set()

    job = runners.submit(run)
    # The loop cancels the step at its time limit; only a step blocking that loop outlives
    # it, and is then interrupted like a sync one.
    if not ended.wait(None if timeout is None else timeout + BLOCKED_GRACE):
        job.cancel()
        ended.wait(BLOCKED_GRACE)
    if not outcome:
        raise StepTimedOut(call.step, timeout)
    return outcome[0]


def stop_job(run: StepRun, job: Job, timeout: float | None) -> None:
    """The watchdog's action for a step past its deadline."""
    if run.stop(timeout):
        job.cancel()


def _emit_result(ctx: Context, result: Any) -> None:
    """The step's return value as ``data`` events (runtime.step.results)."""
    if is_awaited(result):  # a plain def returning a coroutine: run it here
        result = run_to_end(result)
    if is_async_iterator(result):
        run_to_end(_drain_async(ctx, result))
        return
    for item in data_items(result):
        ctx.emit("data", item)


async def _drain_async(ctx: Context, results: AsyncIterator[Any]) -> None:
    async for item in results:
        if item is not None:
            ctx.emit("data", item)
