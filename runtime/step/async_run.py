"""Running one ``async def`` step on one message, as a task on an event loop.

The same rules as a sync run (runtime.step.run_state, runtime.step.results): what a
returned value emits, an exception as one ``error``, ``end`` following, only the first
``end`` counting. What differs is waiting:

* ``ctx.emit`` hands the event over at once, in order, and returns an awaitable. Routing an
  event runs on the loop until it would have to wait (a rate limit, the broker's window of
  unconfirmed publishes, a blocking save); from there it goes on in the background, and
  every later event of the run queues behind it, so the order of events is the order of
  emits. A failure seen at once is raised from ``ctx.emit`` (after its ``error`` event, as
  in a sync step); one seen later from awaiting what ``emit`` returned.
* Past its time limit the run is closed (later emits raise ``StepCancelled``), one
  ``error`` says so, ``end`` follows, and the step's task is cancelled: it gets
  ``CancelledError`` at its next ``await``. The run is finished then, whether or not the
  task obeys.

A run is ``finished`` once its step ended (or was stopped) and every event it emitted has
been handed over; the worker settles the message from there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from runtime.errors import StepCancelled
from runtime.step.bridge import run_to_end
from runtime.step.context import AsyncContext, Emitted, close_async, release
from runtime.step.events import Event
from runtime.step.results import data_items, is_async_iterator, is_awaited
from runtime.step.run_state import Handle, Outcome, RunState, StepCall
from runtime.step.waits import Route, Wait


class AsyncStepRun:
    """One async step on one message: ``start`` it on the loop, then await ``finished``."""

    def __init__(self, call: StepCall, route: Route) -> None:
        self._call = call
        self._route = route
        self._state = RunState(call.step)
        self.outcome = self._state.outcome
        self._queue: collections.deque[_Queued] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.finished: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.ctx = call.context(AsyncContext, self._deliver)

    def start(self, timeout: float | None) -> asyncio.Task[None]:
        """Run the step as a task; stop it after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        if timeout is not None:
            self._timer = loop.call_later(timeout, self.stop, timeout)
        self._task = loop.create_task(self._body())
        return self._task

    def stop(self, timeout: float | None) -> bool:
        """End the run now because it took too long; False if it had already finished."""
        final = self._state.stopping(self.ctx, timeout)
        if final is None:
            return False
        for event in final:
            self._hand_over(event)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._finish_when_drained()
        return True

    # --- the step's task ------------------------------------------------------------------

    async def _body(self) -> None:
        call = self._call
        error: BaseException | None = None
        try:
            result = call.process(self.ctx, call.message, dict(call.cfg), dict(call.snapshot))
            await self._emit_result(result)
        except StepCancelled:
            pass
        except asyncio.CancelledError:
            if not self._state.closed:
                raise  # cancelled from outside (the loop is shutting down): not ours to keep
        except BaseException as exc:  # noqa: BLE001 - every failure of step code is an event
            error = exc
        finally:
            if self._timer is not None:
                self._timer.cancel()
        if not self._state.closed:
            for event in self._state.closing(error):
                self._hand_over(event)
            self._finish_when_drained()

    async def _emit_result(self, result: Any) -> None:
        """The step's return value as ``data`` events (runtime.step.results)."""
        if is_awaited(result):
            result = await result
        if is_async_iterator(result):
            await self._drain_results(result)
            return
        for item in data_items(result):
            await self.ctx.emit("data", item)

    async def _drain_results(self, results: AsyncIterator[Any]) -> None:
        async for item in results:
            if item is not None:
                await self.ctx.emit("data", item)

    # --- events ------------------------------------------------------------------------

    def _deliver(self, event: Event) -> Emitted:
        if self._state.closed:
            raise StepCancelled
        if not self._state.admit(event):
            return Emitted()
        return self._submit(event, raise_now=True)

    def _hand_over(self, event: Event) -> None:
        """An event of the runtime's own (the final error, end): counted, then handed over."""
        if self._state.admit(event):
            self._submit(event, raise_now=False)

    def _submit(self, event: Event, *, raise_now: bool) -> Emitted:
        if self._queue:  # behind an event still being handed over: its turn comes
            queued = _Queued(event, self._route)
            self._enqueue(queued)
            return Emitted(queued.future)
        try:
            steps = self._route_of(event)
            wait = next(steps) if steps is not None else None
        except StopIteration:
            return Emitted()
        except Exception as exc:  # noqa: BLE001 - reported as an error event, once
            failure = self._failed(event, exc)
            if raise_now and failure is not None:
                raise failure from None
            return Emitted()
        if wait is None:
            return Emitted()
        queued = _Queued(event, self._route, wait, steps)
        self._enqueue(queued)
        return Emitted(queued.future)

    def _route_of(self, event: Event) -> Iterator[Wait] | None:
        waits: Iterator[Wait] | None = self._route(event)
        return waits

    def _enqueue(self, queued: _Queued) -> None:
        self._queue.append(queued)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                queued = self._queue[0]
                try:
                    await queued.run()
                except Exception as exc:  # noqa: BLE001 - reported as an error event, once
                    failure = self._failed(queued.event, exc)
                    queued.fail(failure or exc)
                else:
                    queued.done()
                self._queue.popleft()
        finally:
            self._drainer = None
        if self._state.closed:
            self._finish_when_drained()

    def _failed(self, event: Event, error: BaseException) -> BaseException | None:
        """Report an event that could not be handed over; what the step should get."""
        failure, report = self._state.failed(event, error)
        if report is not None:
            self._enqueue(_Queued(report, self._route))
        return failure

    def _finish_when_drained(self) -> None:
        if self._queue or self.finished.done():
            return
        release(self.ctx)
        self.finished.set_result(self.outcome)


class _Queued:
    """An event waiting for its turn, or part way through being handed over (``wait``)."""

    __slots__ = ("event", "future", "route", "steps", "wait")

    def __init__(
        self,
        event: Event,
        route: Route,
        wait: Wait | None = None,
        steps: Iterator[Wait] | None = None,
    ) -> None:
        self.event = event
        self.route = route
        self.wait = wait
        self.steps = steps
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody need await what emit returned: a failure must not be "never retrieved".
        self.future.add_done_callback(_retrieve)

    async def run(self) -> None:
        wait = self.wait
        if wait is None:  # its turn has come: start routing it
            self.steps = self.route(self.event)
        steps = self.steps
        if steps is None:
            return
        with contextlib.suppress(StopIteration):
            if wait is None:
                wait = next(steps)
            while True:
                await wait.wait()
                wait = next(steps)

    def done(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def run_on_own_loop(call: StepCall, handle: Handle, timeout: float | None) -> Outcome:
    """Run an async step to its end on an event loop of its own (tests, ``exec``): each
    event goes to ``handle`` as it comes."""

    def route(event: Event) -> None:
        handle(event)

    async def main() -> Outcome:
        run = AsyncStepRun(call, route)
        run.start(timeout)
        outcome = await run.finished
        await close_async(run.ctx)
        return outcome

    return run_to_end(main())
