"""A delivery made ready to run: read (decrypted, bounded), its step's call built, and the
bodies it keeps in object storage fetched. The same for a sync and an async step."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from runtime.log import get_logger
from runtime.platform.object_storage import ObjectStorageError
from runtime.step.context import HttpFactory
from runtime.step.events import Message
from runtime.step.loader import ProcessFunction, Step
from runtime.step.run_state import StepCall
from runtime.worker import headers, verdicts
from runtime.worker.crypto import MessageCipher
from runtime.worker.dispatch import EventRouter, Routes
from runtime.worker.lightweight import Bodies, references_objects, resolve
from runtime.worker.outbox import Outbox
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ledger, Ticket
from runtime.worker.step_state import StepState
from runtime.worker.wire import BadMessage, decode

_log = get_logger(__name__)


@dataclass(frozen=True)
class StepParts:
    """What every message of the step is run with."""

    settings: Settings
    step: Step
    state: StepState
    cipher: MessageCipher
    routes: Routes
    bodies: Bodies
    http_factory: HttpFactory


class Preparation:
    """Reads a delivery and makes its message ready to run (see the module's docstring)."""

    def __init__(self, parts: StepParts, ledger: Ledger) -> None:
        self._settings = parts.settings
        self._cipher = parts.cipher
        self._state = parts.state
        self._step = parts.step
        self._routes = parts.routes
        self._storage = parts.bodies
        self._http_factory = parts.http_factory
        self._ledger = ledger

    def read(self, attempt: Attempt) -> Message | None:
        """The delivery's message; None when it was rejected as unreadable."""
        ticket = attempt.ticket
        try:
            return decode(
                ticket.delivery,
                self._cipher,
                self._settings.input_format,
                self._settings.incoming_message_size_limit,
            )
        except BadMessage as exc:
            _log.error("message_rejected", reason=str(exc), messageId=ticket.message_id)
            self._ledger.settle(ticket, verdicts.UNREADABLE)
            return None

    def prepare(self, attempt: Attempt, message: Message) -> Prepared:
        settings = self._settings
        ticket = attempt.ticket
        reduced = headers.incoming(ticket.delivery.headers)
        cfg = self._state.cfg()
        outbox = Outbox()
        router = self._routes.for_message(
            delivery=ticket.delivery,
            message=message,
            cfg=cfg,
            base_headers=headers.outgoing(reduced, settings),
            outbox=outbox,
        )
        attempt.router = router
        call = StepCall(
            self._step.process,
            message,
            cfg,
            self._state.snapshot(),
            log_fields={
                "threadId": reduced["threadId"],
                "messageId": ticket.message_id,
                "parentMessageId": reduced.get("parentMessageId"),
            },
            http_factory=self._http_factory,
            flow_variables=self._state.variables,
            step=settings.function,
        )
        resolving = self._step.spec.auto_resolve_object_references and references_objects(message)
        return Prepared(call, router, outbox, resolving)

    def resolved(self, prepared: Prepared, message_id: str) -> StepCall:
        """The call, with the bodies kept in object storage fetched (blocks)."""
        if prepared.resolving:
            try:
                resolve(self._storage, prepared.call.message, message_id)
            except ObjectStorageError as exc:
                # Reported as the message's error, then rejected.
                failing = failing_process(exc, asynchronous=prepared.call.is_async)
                return dataclasses.replace(prepared.call, process=failing)
        return prepared.call


def failing_process(error: BaseException, *, asynchronous: bool) -> ProcessFunction:
    """A step function that raises ``error``: the message's error event says it."""
    if asynchronous:

        async def process_async(*_args: Any) -> Any:
            raise error

        return process_async

    def process(*_args: Any) -> Any:
        raise error

    return process


@dataclass(frozen=True)
class Prepared:
    """One message made ready to run: the step's call and where its events go."""

    call: StepCall
    router: EventRouter
    outbox: Outbox
    resolving: bool
    """Bodies of the message are in object storage and must be fetched first."""


class Attempt:
    """What the last resort needs to know of one message's way through the worker."""

    __slots__ = ("router", "sealed", "ticket")

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.router: EventRouter | None = None
        self.sealed = False
