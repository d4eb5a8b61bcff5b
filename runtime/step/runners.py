"""Threads that run step code, so the caller can stop waiting for a step that hangs.

A step that runs past its time limit is interrupted by raising ``StepCancelled`` inside
its thread. Code blocked in a C call (a socket read, ``time.sleep``) only sees it when the
call returns, so the thread that ran it is retired rather than reused, and counted.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable

from runtime.errors import StepCancelled
from runtime.log import get_logger

_log = get_logger(__name__)

_MAX_IDLE = 64
_current = threading.local()


def current_job() -> Job | None:
    """The job the calling thread is running, if it is a runner thread."""
    job: Job | None = getattr(_current, "job", None)
    return job


class Job:
    """One call running on a runner thread."""

    def __init__(self, target: Callable[[], object]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self._finished = False
        self.cancelled = False

    def run(self) -> None:
        with self._lock:
            self._thread_id = threading.get_ident()
        _current.job = self
        try:
            self.target()
        finally:
            _current.job = None
            with self._lock:
                self._finished = True

    def cancel(self) -> None:
        """Interrupt the call if it is still running; its thread is then retired."""
        with self._lock:
            self.cancelled = True
            if self._finished or self._thread_id is None:
                return
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread_id), ctypes.py_object(StepCancelled)
            )


class RunnerPool:
    """Daemon threads that run jobs; idle ones are reused, cancelled ones are retired."""

    def __init__(self, name: str = "step") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0
        self.retired = 0

    def submit(self, target: Callable[[], object]) -> Job:
        job = Job(target)
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                self._started += 1
                thread = threading.Thread(
                    target=self._loop, name=f"{self._name}-{self._started}", daemon=True
                )
                thread.start()
        self._jobs.put(job)
        return job

    def _loop(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                try:
                    job.run()
                except Exception:  # noqa: BLE001 - a failed job must not take its thread down
                    _log.exception("runner_job_failed")
                with self._lock:
                    if job.cancelled:
                        self.retired += 1
                        return
                    if self._idle >= _MAX_IDLE:
                        return
                    self._idle += 1
        except StepCancelled:
            # Delivered late, after the job's own code had returned: retire this thread.
            with self._lock:
                self.retired += 1


RUNNERS = RunnerPool()
