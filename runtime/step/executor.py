"""Running one step on one message: the events it emits, in order, and nothing unbounded.

Each event goes to ``handle`` as the step emits it, on the step's own thread, and the step's
``ctx.emit`` returns only once ``handle`` has returned: a worker's publish confirm is
back-pressure on the step, and a failure to deliver is raised inside the step (after it was
reported as one ``error`` event). A returned value is one ``data`` event, each item a
generator yields is one ``data`` event as it comes, an exception is one ``error`` event,
and ``end`` follows automatically; only the first ``end`` counts.

A step that runs past its time limit is stopped from another thread: its run is closed
(further emits raise ``StepCancelled``), an ``error`` event says what happened, ``end``
follows, and ``StepCancelled`` is raised inside the step's thread.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from structlog.typing import FilteringBoundLogger

from runtime.errors import StepCancelled, StepError
from runtime.log import get_logger
from runtime.step.context import Context, HttpFactory, cancel, release
from runtime.step.events import Event, Message, error_payload
from runtime.step.loader import ProcessFunction
from runtime.step.runners import RUNNERS, Job, RunnerPool

# Guards only the "finished" flag and its lazily made Event: never held while blocking.
_FINISHING = threading.Lock()

Handle = Callable[[Event], None]
"""Receives each event in order; raising means "not delivered"."""


class DeliveryFailed(StepError):
    """An event the step emitted could not be delivered; already reported as an `error`."""


class StepTimedOut(StepError):
    def __init__(self, step: str, timeout: float | None) -> None:
        super().__init__(
            f"step {step or 'process'!r} ran longer than {timeout or 0:g} s and was stopped; "
            "raise the time limit (ELASTICIO_MESSAGE_TIMEOUT) if it needs longer"
        )


@dataclass
class Outcome:
    """What happened while a step ran on one message."""

    events: int = 0
    errors: int = 0
    errors_before_end: int = 0
    timed_out: bool = False
    undelivered: BaseException | None = None
    """Set when an event (even the final ``error``) could not be delivered at all."""

    @property
    def failed(self) -> bool:
        """The platform's rule: an error before the first ``end`` rejects the message."""
        return self.errors_before_end > 0


class StepRun:
    """One step on one message. ``run_here`` runs it; ``stop`` ends it early from elsewhere."""

    def __init__(
        self,
        process: ProcessFunction,
        message: Message,
        cfg: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        *,
        handle: Handle,
        log: FilteringBoundLogger | None = None,
        http_factory: HttpFactory | None = None,
        flow_variables: Mapping[str, Any] | None = None,
        step: str = "",
    ) -> None:
        self._process = process
        self._message = message
        self._cfg = dict(cfg)
        self._snapshot = dict(snapshot)
        self._handle = handle
        self._step = step
        self._lock = threading.RLock()
        self._reported: set[int] = set()
        self._ended = False
        self._closed = False
        self._finished = False
        self._finished_event: threading.Event | None = None
        self.outcome = Outcome()
        self.ctx = Context(
            deliver=self._deliver,
            log=log or get_logger("component", step=step),
            cfg=cfg,
            http_factory=http_factory,
            flow_variables=flow_variables,
            step=step,
        )

    def run_here(self) -> Outcome:
        """Run the step on the calling thread; returns once ``end`` was handled."""
        error: BaseException | None = None
        try:
            result = self._process(self.ctx, self._message, self._cfg, self._snapshot)
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
            if self._closed:
                return False
            self._closed = True
            cancel(self.ctx)
            self.outcome.timed_out = True
            self._close_with(Event("error", error_payload(StepTimedOut(self._step, timeout))))
        return True

    # --- events ------------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                raise StepCancelled
            failure = self._receive(event)
        if failure is not None:
            raise failure

    def _finish(self, error: BaseException | None) -> None:
        with self._lock:
            if self._closed:
                raise StepCancelled
            self._closed = True
            final = None
            if error is not None and not self._was_reported(error):
                final = Event("error", error_payload(error))
            self._close_with(final)

    def _close_with(self, final: Event | None) -> None:
        try:
            if final is not None:
                self._count_and_handle(final)
            if not self._ended:
                self._ended = True
                self._count_and_handle(Event("end"))
        except Exception as exc:  # noqa: BLE001 - the caller decides what an undelivered end means
            self.outcome.undelivered = exc
        finally:
            release(self.ctx)
            with _FINISHING:
                self._finished = True
                event = self._finished_event
            if event is not None:
                event.set()

    def wait_finished(self, timeout: float | None) -> bool:
        """Wait until ``end`` was handled (by the step's thread or by ``stop``)."""
        with _FINISHING:
            if self._finished:
                return True
            if self._finished_event is None:
                self._finished_event = threading.Event()
            event = self._finished_event
        return event.wait(timeout)

    def _receive(self, event: Event) -> BaseException | None:
        if event.kind == "end":
            if self._ended:
                return None
            self._ended = True
        try:
            self._count_and_handle(event)
        except Exception as exc:  # noqa: BLE001 - turned into an error event, once
            failure = DeliveryFailed(f"could not deliver the {event.kind!r} event: {exc}")
            failure.__cause__ = exc  # raised later, outside this handler
            self._reported.add(id(failure))
            try:
                self._count_and_handle(Event("error", error_payload(failure)))
            except Exception as again:  # noqa: BLE001
                self.outcome.undelivered = again
            return failure
        return None

    def _count_and_handle(self, event: Event) -> None:
        self.outcome.events += 1
        if event.kind == "error":
            self.outcome.errors += 1
            if not self._ended:
                self.outcome.errors_before_end += 1
        self._handle(event)

    def _was_reported(self, error: BaseException) -> bool:
        seen: BaseException | None = error
        while seen is not None:
            if id(seen) in self._reported:
                return True
            seen = seen.__cause__ or seen.__context__
        return False


def execute(
    process: ProcessFunction,
    message: Message,
    cfg: Mapping[str, Any],
    snapshot: Mapping[str, Any],
    *,
    handle: Handle,
    timeout: float | None = None,
    log: FilteringBoundLogger | None = None,
    http_factory: HttpFactory | None = None,
    flow_variables: Mapping[str, Any] | None = None,
    step: str = "",
    runners: RunnerPool = RUNNERS,
) -> Outcome:
    """Run ``process(ctx, msg, cfg, snapshot)`` and hand every event it emits to ``handle``.

    The step runs on a runner thread; this call returns when it ended, or when ``timeout``
    seconds passed, in which case the step is stopped and an ``error`` event says so.
    ``handle`` is called on the step's thread, one event at a time, ``end`` last.
    """
    run = StepRun(
        process,
        message,
        cfg,
        snapshot,
        handle=handle,
        log=log,
        http_factory=http_factory,
        flow_variables=flow_variables,
        step=step,
    )
    job = runners.submit(run.run_here)
    if not run.wait_finished(timeout) and run.stop(timeout):
        job.cancel()
    run.wait_finished(None)
    return run.outcome


def stop_job(run: StepRun, job: Job, timeout: float | None) -> None:
    """The watchdog's action for a step past its deadline."""
    if run.stop(timeout):
        job.cancel()


def _emit_result(ctx: Context, result: Any) -> None:
    if result is None:
        return
    if type(result) is dict:  # the common case, without the generic checks below
        ctx.emit("data", result)
        return
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    elif inspect.isasyncgen(result):
        asyncio.run(_drain_async(ctx, result))
        return
    if isinstance(result, Iterator) and inspect.isgenerator(result):
        for item in result:
            if item is not None:
                ctx.emit("data", item)
        return
    if result is not None:
        ctx.emit("data", result)


async def _drain_async(ctx: Context, results: AsyncIterator[Any]) -> None:
    async for item in results:
        if item is not None:
            ctx.emit("data", item)
