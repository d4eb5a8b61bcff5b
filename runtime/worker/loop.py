"""The worker's message loop: each delivery through the step, settled only when safe.

For every delivery: the ledger (runtime.worker.settlement) decides on arrival, on the broker's I/O
thread, whether it runs (a redelivered copy of a message running here is parked on it, one
that already finished gets its verdict again). A delivery that runs is decoded (bad input
is rejected, logged without its content), bodies kept in object storage are fetched, then
the step runs with a deadline, each event handed to the broker as it is emitted. Once the
step has ended and the broker confirmed every publish of the message, the ledger acks it,
or rejects it when an error came before ``end`` (the sailor's rule), or requeues it when an
event could not be published at all (a bounded number of times): the whole table is in
runtime.worker.verdicts. Nothing is acked before every event it produced was confirmed.

Where a step runs depends on what its author wrote: a sync ``process`` on a runner thread
(stopped past its time limit by an exception raised in that thread), an ``async def`` one
as a task on the worker's one event loop (runtime.step.event_loop; stopped by
cancellation). An async step's broker connections live on that loop too (a sync step's
keep their own thread), so its delivery, publishes and confirms never cross a thread; a
step that blocks the loop delays the steps and their settling, but the broker's heartbeat
guard keeps the connections alive and nothing is lost or run twice.

Whatever fails on the way (a bug of ours, a parser running out of stack, an exception in
a callback) ends in one last-resort path: logged, an ``error`` event when the message could
be read, and the delivery rejected (requeued, boundedly, when not even the error could be
published). No delivery stays unsettled while the worker runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from runtime import metrics
from runtime.auth.async_session import HttpPool
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.deadlines import adapter as watched_adapter
from runtime.log import get_logger
from runtime.network import in_words
from runtime.platform.api import PlatformApi
from runtime.platform.object_storage import ObjectStorage, ObjectStorageError
from runtime.platform.secrets import PlatformSecrets
from runtime.redact import SECRETS
from runtime.step.async_run import AsyncStepRun
from runtime.step.component import Component
from runtime.step.event_loop import StepLoop
from runtime.step.events import Message, error_payload
from runtime.step.executor import StepRun, stop_job
from runtime.step.http import session_factory
from runtime.step.loader import ProcessFunction, Step
from runtime.step.run_state import DeliveryFailed, Outcome, StepCall, is_async
from runtime.step.runners import RunnerPool, current_job
from runtime.step.waits import BLOCKING
from runtime.watchdog import WATCHDOG
from runtime.worker import headers, verdicts
from runtime.worker.crypto import MessageCipher
from runtime.worker.dispatch import EventRouter, Routes
from runtime.worker.key_retries import Unsaved
from runtime.worker.keys import KeySaver
from runtime.worker.lightweight import Bodies, references_objects, resolve
from runtime.worker.outbox import Outbox
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ledger, Run, Ticket
from runtime.worker.step_state import StepState
from runtime.worker.transport import BrokerPort, Delivery
from runtime.worker.wire import BadMessage, decode

_log = get_logger(__name__)


class Worker:
    """Processes deliveries of one step. The broker, API and state are made by the caller.

    An async step needs ``steps_loop``, the event loop it runs on (the caller starts and
    stops it).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        component: Component,
        step: Step,
        broker: BrokerPort,
        api: PlatformApi,
        state: StepState,
        cipher: MessageCipher,
        lock: CredentialLock = IN_PROCESS,
        steps_loop: StepLoop | None = None,
    ) -> None:
        self._settings = settings
        self._step = step
        self._state = state
        self._cipher = cipher
        self._api = api
        publisher = Publisher(broker, settings)
        self._keys = KeySaver(settings, state, api, publisher, cipher)
        storage = ObjectStorage(
            settings.object_storage_uri,
            settings.object_storage_token,
            flow_id=settings.flow_id,
            step_id=settings.step_id,
        )
        self._storage = Bodies(storage, cipher)
        self._routes = Routes(
            settings=settings,
            cipher=cipher,
            publisher=publisher,
            state=state,
            keys=self._keys,
            storage=self._storage,
        )
        self._ledger = Ledger(broker, prefetch=settings.rabbitmq_prefetch_sailor)
        metrics.in_flight_from(lambda: self._ledger.in_flight)
        self._runners = RunnerPool("message")
        # The broker's prefetch already bounds the messages in flight; a semaphore only
        # matters when fewer at once than that were asked for.
        self._limited = settings.thread_pool_size < settings.rabbitmq_prefetch_sailor
        self._slots = (
            threading.BoundedSemaphore(settings.thread_pool_size) if self._limited else None
        )
        self.http_pool = HttpPool()
        self._http_factory = session_factory(
            component.credential_fields(),
            adapter=watched_adapter(
                pool_connections=4, pool_maxsize=max(10, settings.thread_pool_size)
            ),
            pool=self.http_pool,
            fresh_cfg=self._fresh_cfg,
            lock=lock,
            token_timeout=settings.token_timeout,
            keep=True,
            secrets=PlatformSecrets(api, settings.workspace_id),
        )
        self._http_factory.warm(state.cfg())
        self._async = is_async(step.process)
        if self._async and steps_loop is None:
            raise ValueError(f"step {step.name!r} is async: the worker needs its event loop")
        self._loop = steps_loop
        self._async_slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _fresh_cfg(self) -> dict[str, Any]:
        """The step's configuration as the platform has it now, saved keys laid over it."""
        config = self._api.step(self._settings.flow_id, self._settings.step_id).get("config")
        return {**self._state.cfg(), **(config if isinstance(config, dict) else {})}

    @property
    def stuck_threads(self) -> int:
        """Step threads stopped by a timeout that never returned (blocked in C code)."""
        return self._runners.retired

    def on_delivery(self, delivery: Delivery) -> None:
        """Called on the broker's I/O thread: decide, hand a message to run over."""
        admission = self._ledger.receive(delivery)
        if not isinstance(admission, Run):
            return
        ticket = admission.ticket
        if self._loop is not None and self._async:
            self._loop.hand_over(lambda: self._start_task(ticket))
        else:
            self._runners.submit(lambda: self._handle(ticket))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivery taken so far is settled; False if time ran out."""
        return self._ledger.wait_idle(timeout)

    def settle_keys(self, timeout: float) -> list[Unsaved]:
        """Keep saving refreshed keys the platform has not taken, for up to ``timeout``
        seconds; those still unsaved then."""
        return self._keys.settle(timeout)

    # --- what both kinds of step do -------------------------------------------------------

    def _read(self, attempt: _Attempt) -> Message | None:
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

    def _prepare(self, attempt: _Attempt, message: Message) -> _Prepared:
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
        return _Prepared(call, router, outbox, resolving)

    def _resolved(self, prepared: _Prepared, message_id: str) -> StepCall:
        """The call, with the bodies kept in object storage fetched (blocks)."""
        if prepared.resolving:
            try:
                resolve(self._storage, prepared.call.message, message_id)
            except ObjectStorageError as exc:
                # Reported as the message's error, then rejected.
                failing = _failing(exc, asynchronous=prepared.call.is_async)
                return dataclasses.replace(prepared.call, process=failing)
        return prepared.call

    def _seal(self, attempt: _Attempt, prepared: _Prepared, outcome: Outcome) -> None:
        attempt.sealed = True
        ticket, router = attempt.ticket, prepared.router
        prepared.outbox.seal(lambda failures: self._complete(ticket, outcome, failures, router))

    def _last_resort(self, attempt: _Attempt, error: BaseException) -> None:
        """Blocks: publishes the error and waits for the broker."""
        message_id = attempt.ticket.message_id
        reason = SECRETS.scrub(in_words(error) or f"{type(error).__name__}: {error}")[:500]
        _log.error("delivery_failed", messageId=message_id, reason=reason)
        if attempt.sealed:
            return  # its fate is already in the outbox's hands
        # Without a router the message was never read: there is no error event to send.
        reported = attempt.router is None or _report(attempt.router, error, message_id)
        self._ledger.settle(attempt.ticket, verdicts.once_reported(reported))

    def _complete(
        self,
        ticket: Ticket,
        outcome: Outcome,
        failures: list[BaseException],
        router: EventRouter,
    ) -> None:
        """Settle the message once every publish of it is confirmed (or failed)."""
        try:
            decision = verdicts.once_published(outcome, failures)
            if decision.unroutable:
                # Said in an error event first, which needs a thread that may wait for the
                # broker: not the I/O thread this runs on.
                self._runners.submit(
                    lambda: self._report_unroutable(ticket, decision.unroutable, router)
                )
                return
            if decision.lost is not None:
                _log.error(
                    "events_not_published_message_requeued",
                    messageId=ticket.message_id,
                    reason=str(decision.lost),
                )
            self._ledger.settle(ticket, decision.verdict)
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave it unsettled
            _log.error("delivery_failed", messageId=ticket.message_id, reason=repr(exc)[:500])
            self._ledger.settle(ticket, "reject")

    def _report_unroutable(
        self, ticket: Ticket, failures: tuple[BaseException, ...], router: EventRouter
    ) -> None:
        returned = DeliveryFailed("; ".join(str(f) for f in failures))
        reported = _report(router, returned, ticket.message_id)
        self._ledger.settle(ticket, verdicts.once_reported(reported))

    # --- a sync step, on a runner thread --------------------------------------------------

    def _handle(self, ticket: Ticket) -> None:
        attempt = _Attempt(ticket)
        try:
            self._attempt(attempt)
        except BaseException as exc:  # noqa: BLE001 - the last resort: settle, whatever it was
            self._last_resort(attempt, exc)

    def _attempt(self, attempt: _Attempt) -> None:
        if self._slots is not None:
            self._slots.acquire()
        slot = _Slot(self._slots)
        try:
            message = self._read(attempt)
            if message is not None:
                self._run(attempt, self._prepare(attempt, message), slot)
        finally:
            slot.release()

    def _run(self, attempt: _Attempt, prepared: _Prepared, slot: _Slot) -> None:
        settings = self._settings
        call = self._resolved(prepared, attempt.ticket.message_id)
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
                self._seal(attempt, prepared, run.outcome)

        deadline = WATCHDOG.arm(settings.message_timeout, on_timeout)
        started = time.monotonic()
        run.run_here()
        metrics.step_finished(settings.function, time.monotonic() - started)
        deadline.cancel()
        if once.acquire(blocking=False):
            self._seal(attempt, prepared, run.outcome)

    # --- an async step, as a task on the steps' event loop ---------------------------------

    def _start_task(self, ticket: Ticket) -> None:
        # The loop keeps only weak references to its tasks: these are held until done.
        task = asyncio.get_running_loop().create_task(self._handle_async(ticket))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_async(self, ticket: Ticket) -> None:
        attempt = _Attempt(ticket)
        try:
            await self._attempt_async(attempt)
        except BaseException as exc:  # noqa: BLE001 - the last resort: settle, whatever it was
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(BLOCKING, self._last_resort, attempt, exc)

    async def _attempt_async(self, attempt: _Attempt) -> None:
        slots = self._async_slots
        if self._limited and slots is None:
            slots = self._async_slots = asyncio.Semaphore(self._settings.thread_pool_size)
        if slots is not None:
            await slots.acquire()
        try:
            message = self._read(attempt)
            if message is None:
                return
            prepared = self._prepare(attempt, message)
            call = prepared.call
            if prepared.resolving:
                loop = asyncio.get_running_loop()
                message_id = attempt.ticket.message_id
                call = await loop.run_in_executor(BLOCKING, self._resolved, prepared, message_id)
            run = AsyncStepRun(call, prepared.router.route)
            started = time.monotonic()
            run.start(self._settings.message_timeout)
            outcome = await run.finished
            metrics.step_finished(self._settings.function, time.monotonic() - started)
            self._seal(attempt, prepared, outcome)
        finally:
            if slots is not None:
                slots.release()


def _report(router: EventRouter, error: BaseException, message_id: str) -> bool:
    """Say ``error`` in the message's error event now (blocks); False if even that failed."""
    try:
        router.error_now(error_payload(error))
    except Exception as again:  # noqa: BLE001 - cannot even report it: the verdict says so
        _log.error("error_not_published", messageId=message_id, reason=str(again))
        return False
    return True


def _failing(error: BaseException, *, asynchronous: bool) -> ProcessFunction:
    """A step function that raises ``error``: the message's error event says it."""
    if asynchronous:

        async def process_async(*_args: Any) -> Any:
            raise error

        return process_async

    def process(*_args: Any) -> Any:
        raise error

    return process


@dataclass(frozen=True)
class _Prepared:
    """One message made ready to run: the step's call and where its events go."""

    call: StepCall
    router: EventRouter
    outbox: Outbox
    resolving: bool
    """Bodies of the message are in object storage and must be fetched first."""


class _Attempt:
    """What the last resort needs to know of one message's way through the worker."""

    __slots__ = ("router", "sealed", "ticket")

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.router: EventRouter | None = None
        self.sealed = False


class _Slot:
    """A concurrency slot that a timeout may release for the thread still holding it."""

    def __init__(self, semaphore: threading.BoundedSemaphore | None) -> None:
        self._semaphore = semaphore
        self._released = threading.Lock() if semaphore is not None else None

    def release(self) -> None:
        if self._released is not None and self._released.acquire(blocking=False):
            self._semaphore.release()  # type: ignore[union-attr]


def report_startup_error(
    publisher: Publisher, settings: Settings, cipher: MessageCipher, error: BaseException
) -> None:
    """Publish a start-up failure as the sailor does: an error envelope, no errorInput."""
    from runtime.worker.wire import error_envelope

    body, _ = error_envelope(error_payload(error), None, cipher)
    step_headers: dict[str, Any] = headers.step_ids(settings)
    publisher.send(settings.error_routing_key, body, step_headers)
