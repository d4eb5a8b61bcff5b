"""An ``async def`` step's way: each message a task on the worker's one event loop
(runtime.step.event_loop), stopped past its time limit by cancellation; whatever blocks
(fetching stored bodies, the last resort) goes to a thread."""

from __future__ import annotations

import asyncio
import time

from runtime import metrics
from runtime.step.async_run import AsyncStepRun
from runtime.step.event_loop import StepLoop
from runtime.step.waits import BLOCKING
from runtime.worker.completion import Completion
from runtime.worker.preparation import Attempt, Preparation
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ticket


class AsyncPath:
    """Runs an async step's messages (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        prep: Preparation,
        completion: Completion,
        loop: StepLoop,
    ) -> None:
        self._settings = settings
        self._prep = prep
        self._completion = completion
        self._loop = loop
        self._limited = settings.thread_pool_size < settings.rabbitmq_prefetch_sailor
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, ticket: Ticket) -> None:
        """Run the message as a task on the steps' loop (called on the broker's I/O thread,
        which is that loop when the broker lives on it)."""
        self._loop.hand_over(lambda: self.start(ticket))

    def start(self, ticket: Ticket) -> None:
        """Run one message as a task (called on the steps' loop)."""
        # The loop keeps only weak references to its tasks: these are held until done (each
        # lets go of itself, which costs less than a done callback scheduled on the loop).
        self._tasks.add(asyncio.get_running_loop().create_task(self._handle_async(ticket)))

    async def _handle_async(self, ticket: Ticket) -> None:
        attempt = Attempt(ticket)
        try:
            await self._attempt_async(attempt)
        except BaseException as exc:  # noqa: BLE001 - the last resort: settle, whatever it was
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(BLOCKING, self._completion.last_resort, attempt, exc)
        finally:
            self._tasks.discard(asyncio.current_task())

    async def _attempt_async(self, attempt: Attempt) -> None:
        slots = self._slots
        if self._limited and slots is None:  # made on the loop it belongs to
            slots = self._slots = asyncio.Semaphore(self._settings.thread_pool_size)
        if slots is not None:
            await slots.acquire()
        try:
            message = self._prep.read(attempt)
            if message is None:
                return
            prepared = self._prep.prepare(attempt, message)
            call = prepared.call
            if prepared.resolving:
                loop = asyncio.get_running_loop()
                message_id = attempt.ticket.message_id
                call = await loop.run_in_executor(
                    BLOCKING, self._prep.resolved, prepared, message_id
                )
            run = AsyncStepRun(call, prepared.router.route)
            started = time.monotonic()
            run.start(self._settings.message_timeout)
            outcome = await run.finished
            metrics.step_finished(self._settings.function, time.monotonic() - started)
            self._completion.seal(attempt, prepared, outcome)
        finally:
            if slots is not None:
                slots.release()
