"""Running one step on one message: the events it emits, in order, and nothing unbounded.

The step runs on a runner thread; the caller's thread receives each event as it is emitted
and hands it to ``handle``. The step's ``ctx.emit`` returns only once ``handle`` has returned,
so a worker's publish confirm is back-pressure on the step, and a failure to deliver is
raised inside the step. A returned value is one ``data`` event, each item a generator yields
is one ``data`` event as it comes, an exception is one ``error`` event, and ``end`` follows
automatically; only the first ``end`` counts.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from structlog.typing import FilteringBoundLogger

from runtime.context import Context, HttpFactory
from runtime.errors import StepCancelled, StepError
from runtime.events import Event, Message, error_payload
from runtime.log import get_logger
from runtime.runners import RUNNERS, RunnerPool
from runtime.steps import ProcessFunction

Handle = Callable[[Event], None]
"""Receives each event in order, on the caller's thread; raising means "not delivered"."""


class DeliveryFailed(StepError):
    """An event the step emitted could not be delivered; already reported as an `error`."""


@dataclass
class Outcome:
    """What happened while a step ran on one message."""

    events: int = 0
    errors: int = 0
    errors_before_end: int = 0
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        """The platform's rule: an error before the first ``end`` rejects the message."""
        return self.errors_before_end > 0


@dataclass(frozen=True)
class _Emitted:
    event: Event
    reply: _Reply


@dataclass(frozen=True)
class _Finished:
    error: BaseException | None


class _Reply:
    """Blocks the step's thread until the caller's thread has handled its event."""

    __slots__ = ("_done", "error")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.error: BaseException | None = None

    def wait(self) -> None:
        self._done.acquire()
        if self.error is not None:
            raise self.error

    def release(self, error: BaseException | None = None) -> None:
        self.error = error
        self._done.release()


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

    Args:
        process: the step's function.
        message: the incoming message.
        cfg: the step's configuration, credentials included.
        snapshot: the step's current snapshot.
        handle: called on this thread for each event, in order; ``end`` comes last.
        timeout: seconds the step may run; past it the step is stopped and an ``error``
            event says so. None waits for ever (only for local runs).
        log: the logger ``ctx.log`` is; bound to the message's ids by the caller.
        http_factory: builds ``ctx.http``; a plain ``requests.Session`` by default.
        flow_variables: the flow's variables, as ``ctx.flow_variables``.
        step: the step's name, for messages.
        runners: the threads the step runs on.
    """
    run = _Run(handle)
    ctx = Context(
        deliver=run.deliver,
        log=log or get_logger("component", step=step),
        cfg=cfg,
        http_factory=http_factory,
        flow_variables=flow_variables,
        step=step,
    )
    job = runners.submit(lambda: run.call(process, ctx, message, dict(cfg), dict(snapshot)))
    try:
        run.serve(ctx, timeout, step)
    finally:
        if run.outcome.timed_out:
            job.cancel()
        else:
            ctx.release()
    return run.outcome


class _Run:
    def __init__(self, handle: Handle) -> None:
        self._handle = handle
        self._inbox: queue.SimpleQueue[_Emitted | _Finished] = queue.SimpleQueue()
        self._reported: set[int] = set()
        self._ended = False
        self._closed = False
        self._closing = threading.Lock()
        self.outcome = Outcome()

    # --- the step's thread -------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        reply = _Reply()
        with self._closing:
            if self._closed:
                raise StepCancelled
            self._inbox.put(_Emitted(event, reply))
        reply.wait()

    def call(
        self,
        process: ProcessFunction,
        ctx: Context,
        message: Message,
        cfg: dict[str, Any],
        snapshot: dict[str, Any],
    ) -> None:
        error: BaseException | None = None
        try:
            result = process(ctx, message, cfg, snapshot)
            _emit_result(ctx, result)
        except StepCancelled:
            return
        except BaseException as exc:  # noqa: BLE001 - every failure of step code is an event
            error = exc
        self._inbox.put(_Finished(error))

    # --- the caller's thread -----------------------------------------------------------

    def serve(self, ctx: Context, timeout: float | None, step: str) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._inbox.get(timeout=remaining)
            except queue.Empty:
                ctx.cancel()
                self._close()
                self.outcome.timed_out = True
                self._emit_own(Event("error", error_payload(StepTimedOut(step, timeout))))
                break
            if isinstance(item, _Finished):
                error = item.error
                if error is not None and not self._was_reported(error):
                    self._emit_own(Event("error", error_payload(error)))
                break
            item.reply.release(self._receive(item.event))
        if not self._ended:
            self._emit_own(Event("end"))

    def _close(self) -> None:
        """Refuse further events and free a step thread that is waiting on one."""
        with self._closing:
            self._closed = True
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Emitted):
                item.reply.release(StepCancelled())

    def _receive(self, event: Event) -> BaseException | None:
        if event.kind == "end":
            if self._ended:
                return None
            self._ended = True
        try:
            self._count_and_handle(event)
        except Exception as exc:  # noqa: BLE001 - turned into an error event, once
            failure = DeliveryFailed(f"could not deliver the {event.kind!r} event: {exc}")
            self._reported.add(id(failure))
            self._emit_own(Event("error", error_payload(failure)))
            return failure
        return None

    def _count_and_handle(self, event: Event) -> None:
        self.outcome.events += 1
        if event.kind == "error":
            self.outcome.errors += 1
            if not self._ended:
                self.outcome.errors_before_end += 1
        self._handle(event)

    def _emit_own(self, event: Event) -> None:
        if event.kind == "end":
            self._ended = True
        self._count_and_handle(event)

    def _was_reported(self, error: BaseException) -> bool:
        seen: BaseException | None = error
        while seen is not None:
            if id(seen) in self._reported:
                return True
            seen = seen.__cause__ or seen.__context__
        return False


class StepTimedOut(StepError):
    def __init__(self, step: str, timeout: float | None) -> None:
        super().__init__(
            f"step {step or 'process'!r} ran longer than {timeout:g} s and was stopped; "
            "raise the time limit (ELASTICIO_MESSAGE_TIMEOUT) if it needs longer"
        )


def _emit_result(ctx: Context, result: Any) -> None:
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
