"""A sync step's way: each message on a runner thread, stopped past its time limit by the
watchdog (an exception raised in that thread), at most ``thread_pool_size`` at once."""

from __future__ import annotations

import threading
import time

from runtime import metrics
from runtime.step.executor import StepRun, stop_job
from runtime.step.runners import RunnerPool, current_job
from runtime.watchdog import WATCHDOG
from runtime.worker.completion import Completion
from runtime.worker.preparation import Attempt, Preparation, Prepared
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ticket


class SyncPath:
    """Runs a sync step's messages (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        prep: Preparation,
        completion: Completion,
        runners: RunnerPool,
    ) -> None:
        self._settings = settings
        self._prep = prep
        self._completion = completion
        self._runners = runners
        # The broker's prefetch already bounds the messages in flight; a semaphore only
        # matters when fewer at once than that were asked for.
        limited = settings.thread_pool_size < settings.rabbitmq_prefetch_sailor
        self._slots = threading.BoundedSemaphore(settings.thread_pool_size) if limited else None

    def take(self, ticket: Ticket) -> None:
        """Run the message on a runner thread (called on the broker's I/O thread)."""
        self._runners.submit(lambda: self.handle(ticket))

    def handle(self, ticket: Ticket) -> None:
        """Run one message on this runner thread, to its settle."""
        attempt = Attempt(ticket)
        try:
            self._attempt(attempt)
        except BaseException as exc:  # noqa: BLE001 - the last resort: settle, whatever it was
            self._completion.last_resort(attempt, exc)

    def _attempt(self, attempt: Attempt) -> None:
        if self._slots is not None:
            self._slots.acquire()
        slot = _Slot(self._slots)
        try:
            message = self._prep.read(attempt)
            if message is not None:
                self._run(attempt, self._prep.prepare(attempt, message), slot)
        finally:
            slot.release()

    def _run(self, attempt: Attempt, prepared: Prepared, slot: _Slot) -> None:
        settings = self._settings
        call = self._prep.resolved(prepared, attempt.ticket.message_id)
        run = StepRun(call, prepared.router)
        once = threading.Lock()
        job = current_job()

        def on_timeout() -> None:
            if job is not None:
                stop_job(run, job, settings.message_timeout)
            else:
                run.stop(settings.message_timeout)
            if once.acquire(blocking=False):
                slot.release()  # the stuck thread keeps running, but not in our count
                self._completion.seal(attempt, prepared, run.outcome)

        deadline = WATCHDOG.arm(settings.message_timeout, on_timeout)
        started = time.monotonic()
        run.run_here()
        metrics.step_finished(settings.function, time.monotonic() - started)
        deadline.cancel()
        if once.acquire(blocking=False):
            self._completion.seal(attempt, prepared, run.outcome)


class _Slot:
    """A concurrency slot that a timeout may release for the thread still holding it."""

    def __init__(self, semaphore: threading.BoundedSemaphore | None) -> None:
        self._semaphore = semaphore
        self._released = threading.Lock() if semaphore is not None else None

    def release(self) -> None:
        if self._released is not None and self._released.acquire(blocking=False):
            self._semaphore.release()  # type: ignore[union-attr]
