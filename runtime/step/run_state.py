"""One step's run on one message, whichever way it runs: what it is given, and what it did.

``StepCall`` carries what a run needs (the step's function, the message, its configuration
and snapshot, its logger and HTTP sessions). ``RunState`` keeps the platform's rules for
the events of one run, the same for a sync step on a thread (runtime.step.executor) and an
async step on the event loop (runtime.step.async_run): every event is counted, only the
first ``end`` counts, an ``error`` before it fails the message, an exception already
reported as an ``error`` is not reported twice, and once the run is closed (it ended, or
ran past its time limit) nothing more goes out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from runtime.errors import StepError
from runtime.step.context import Deliver, HttpFactory, StepContext, cancel
from runtime.step.events import Event, Message, error_payload
from runtime.step.loader import ProcessFunction

_C = TypeVar("_C", bound=StepContext)

Handle = Callable[[Event], None]
"""Receives each event in order; raising means "not delivered"."""


class DeliveryFailed(StepError):
    """An event the step emitted could not be delivered; already reported as an `error`."""


class StepTimedOut(StepError):
    """The step ran past its time limit; said in the run's last ``error`` event."""

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


@dataclass(frozen=True)
class StepCall:
    """Everything one run of a step needs, given once."""

    process: ProcessFunction
    message: Message
    cfg: Mapping[str, Any]
    snapshot: Mapping[str, Any]
    log_fields: Mapping[str, Any] | None = None
    """What ``ctx.log`` is bound to (it is made on first use)."""
    http_factory: HttpFactory | None = None
    flow_variables: Mapping[str, Any] | None = None
    step: str = ""

    @property
    def is_async(self) -> bool:
        return is_async(self.process)

    def context(self, kind: type[_C], deliver: Deliver) -> _C:
        """The step's ``ctx`` (a ``Context``, or an ``AsyncContext``) for this call."""
        return kind(
            deliver=deliver,
            log_fields=self.log_fields,
            cfg=self.cfg,
            http_factory=self.http_factory,
            flow_variables=self.flow_variables,
            step=self.step,
        )


def is_async(process: ProcessFunction) -> bool:
    """Whether a step runs on the event loop: ``async def`` or an async generator."""
    function = getattr(process, "__func__", process)
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


class RunState:
    """The events of one run so far, and whether it is over (see the module's docstring)."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.outcome = Outcome()
        self.ended = False
        self.closed = False
        self._reported: set[int] = set()

    def admit(self, event: Event) -> bool:
        """Count an event about to be handed on; False for a second ``end`` (dropped)."""
        if event.kind == "end":
            if self.ended:
                return False
            self.ended = True
        self.outcome.events += 1
        if event.kind == "error":
            self.outcome.errors += 1
            if not self.ended:
                self.outcome.errors_before_end += 1
        return True

    def failure(self, event: Event, error: BaseException) -> tuple[DeliveryFailed, Event]:
        """The error a step gets for an event that could not be delivered, and the ``error``
        event reporting it (which the step's own raising of it does not repeat)."""
        failure = DeliveryFailed(f"could not deliver the {event.kind!r} event: {error}")
        failure.__cause__ = error
        self._reported.add(id(failure))
        return failure, Event("error", error_payload(failure))

    def failed(
        self, event: Event, error: BaseException
    ) -> tuple[BaseException | None, Event | None]:
        """An event could not be handed over: what the step should get (None once the run
        is closed: then the message goes back instead), and the ``error`` event to report
        it with (counted already; None when there is nothing to report)."""
        if self.closed:
            self.outcome.undelivered = error  # too late to report it
            return None, None
        failure, report = self.failure(event, error)
        return failure, report if self.admit(report) else None

    def stopping(self, ctx: StepContext, timeout: float | None) -> list[Event] | None:
        """Stop a run past its time limit: its last events, or None if it had finished."""
        if self.closed:
            return None
        cancel(ctx)
        return self.timing_out(timeout)

    def closing(self, error: BaseException | None) -> list[Event]:
        """Close the run as its step ended (``error``: what it raised): the last events."""
        self.closed = True
        final = []
        if error is not None and not self._was_reported(error):
            final.append(Event("error", error_payload(error)))
        return self._with_end(final)

    def timing_out(self, timeout: float | None) -> list[Event]:
        """Close the run because it ran too long: the last events."""
        self.closed = True
        self.outcome.timed_out = True
        return self._with_end([Event("error", error_payload(StepTimedOut(self.step, timeout)))])

    def _with_end(self, final: list[Event]) -> list[Event]:
        if not self.ended:
            final.append(Event("end"))
        return final

    def _was_reported(self, error: BaseException) -> bool:
        seen: BaseException | None = error
        while seen is not None:
            if id(seen) in self._reported:
                return True
            seen = seen.__cause__ or seen.__context__
        return False
