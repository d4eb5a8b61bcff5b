"""The worker's message loop: each delivery through the step, settled only when safe.

For every delivery: the ledger (runtime.worker.settlement) decides on arrival, on the broker's I/O
thread, whether it runs (a redelivered copy of a message running here is parked on it, one
that already finished gets its verdict again). A delivery that runs goes to a runner
thread: decoded (bad input is rejected, logged without its content), bodies kept in
object storage fetched, then the step runs with a deadline, each event handed to the broker
as it is emitted. Once the step has ended and the broker confirmed every publish of the
message, the ledger acks it, or rejects it when an error came before ``end`` (the sailor's
rule), or requeues it when an event could not be published at all (a bounded number of
times). Nothing is acked before every event it produced was confirmed.

Whatever fails on the way (a bug of ours, a parser running out of stack, an exception in
a callback) ends in one last-resort path: logged, an ``error`` event when the message could
be read, and the delivery rejected (requeued, boundedly, when not even the error could be
published). No delivery stays unsettled while the worker runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from runtime import metrics
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.deadlines import adapter as watched_adapter
from runtime.log import get_logger
from runtime.network import in_words
from runtime.platform.api import PlatformApi
from runtime.platform.object_storage import ObjectStorage, ObjectStorageError
from runtime.redact import SECRETS
from runtime.step.component import Component
from runtime.step.events import Message, error_payload
from runtime.step.executor import DeliveryFailed, Outcome, StepRun, stop_job
from runtime.step.http import session_factory
from runtime.step.loader import Step
from runtime.step.runners import RunnerPool, current_job
from runtime.watchdog import WATCHDOG
from runtime.worker import headers
from runtime.worker.crypto import MessageCipher
from runtime.worker.dispatch import EventRouter, Throttles
from runtime.worker.key_retries import Unsaved
from runtime.worker.keys import KeySaver
from runtime.worker.lightweight import Bodies, references_objects, resolve
from runtime.worker.outbox import Outbox
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ledger, Run, Ticket
from runtime.worker.step_state import StepState
from runtime.worker.transport import BrokerPort, Delivery, Settlement, UnroutableError
from runtime.worker.wire import BadMessage, decode

_log = get_logger("runtime.worker.loop")


class Worker:
    """Processes deliveries of one step. The broker, API and state are made by the caller."""

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
    ) -> None:
        self._settings = settings
        self._step = step
        self._state = state
        self._cipher = cipher
        self._publisher = Publisher(broker, settings)
        self._throttles = Throttles(settings)
        self._keys = KeySaver(settings, state, api, self._publisher, cipher)
        self._ledger = Ledger(broker)
        metrics.in_flight_from(lambda: self._ledger.in_flight)
        self._runners = RunnerPool("message")
        # The broker's prefetch already bounds the messages in flight; a semaphore only
        # matters when fewer threads than that were asked for.
        limited = settings.thread_pool_size < settings.rabbitmq_prefetch_sailor
        self._slots = threading.BoundedSemaphore(settings.thread_pool_size) if limited else None
        pool = watched_adapter(pool_connections=4, pool_maxsize=max(10, settings.thread_pool_size))
        self._http_factory = session_factory(
            component.credential_fields(),
            adapter=pool,
            fresh_cfg=self._fresh_cfg,
            lock=lock,
            token_timeout=settings.token_timeout,
        )
        self._api = api
        storage = ObjectStorage(
            settings.object_storage_uri,
            settings.object_storage_token,
            flow_id=settings.flow_id,
            step_id=settings.step_id,
        )
        self._storage = Bodies(storage, cipher)

    def _fresh_cfg(self) -> dict[str, Any]:
        """The step's configuration as the platform has it now, saved keys laid over it."""
        config = self._api.step(self._settings.flow_id, self._settings.step_id).get("config")
        return {**self._state.cfg(), **(config if isinstance(config, dict) else {})}

    @property
    def stuck_threads(self) -> int:
        """Step threads stopped by a timeout that never returned (blocked in C code)."""
        return self._runners.retired

    def on_delivery(self, delivery: Delivery) -> None:
        """Called on the broker's I/O thread: decide, hand a message to run to a runner."""
        admission = self._ledger.receive(delivery)
        if isinstance(admission, Run):
            ticket = admission.ticket
            self._runners.submit(lambda: self._handle(ticket))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivery taken so far is settled; False if time ran out."""
        return self._ledger.wait_idle(timeout)

    def settle_keys(self, timeout: float) -> list[Unsaved]:
        """Keep saving refreshed keys the platform has not taken, for up to ``timeout``
        seconds; those still unsaved then."""
        return self._keys.settle(timeout)

    # --- one message, on a runner thread ------------------------------------------------

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
            delivery = attempt.ticket.delivery
            try:
                message = decode(
                    delivery,
                    self._cipher,
                    self._settings.input_format,
                    self._settings.incoming_message_size_limit,
                )
            except BadMessage as exc:
                _log.error("message_rejected", reason=str(exc), messageId=attempt.ticket.message_id)
                self._ledger.settle(attempt.ticket, "reject")
                return
            self._run(attempt, message, slot)
        finally:
            slot.release()

    def _last_resort(self, attempt: _Attempt, error: BaseException) -> None:
        message_id = attempt.ticket.message_id
        reason = SECRETS.scrub(in_words(error) or f"{type(error).__name__}: {error}")[:500]
        _log.error("delivery_failed", messageId=message_id, reason=reason)
        if attempt.sealed:
            return  # its fate is already in the outbox's hands
        verdict: Settlement = "reject"
        if attempt.router is not None:
            try:
                attempt.router.error_now(error_payload(error))
            except Exception as again:  # noqa: BLE001 - cannot even report it: let it come back
                _log.error("error_not_published", messageId=message_id, reason=str(again))
                verdict = "requeue"
        self._ledger.settle(attempt.ticket, verdict)

    def _run(self, attempt: _Attempt, message: Message, slot: _Slot) -> None:
        settings = self._settings
        ticket = attempt.ticket
        delivery = ticket.delivery
        message_id = ticket.message_id
        process = self._step.process
        reduced = headers.incoming(delivery.headers)
        cfg = self._state.cfg()
        outbox = Outbox(wait_timeout=settings.publish_timeout)
        router = EventRouter(
            settings=settings,
            cipher=self._cipher,
            publisher=self._publisher,
            throttles=self._throttles,
            state=self._state,
            keys=self._keys,
            delivery=delivery,
            message=message,
            cfg=cfg,
            base_headers=headers.outgoing(reduced, settings),
            outbox=outbox,
            storage=self._storage,
        )
        attempt.router = router
        if self._step.spec.auto_resolve_object_references and references_objects(message):
            try:
                resolve(self._storage, message, message_id)
            except ObjectStorageError as exc:
                process = _raising(exc)  # reported as the message's error, then rejected
        run = StepRun(
            process,
            message,
            cfg,
            self._state.snapshot(),
            handle=router,
            log=get_logger(
                "component",
                threadId=reduced["threadId"],
                messageId=message_id,
                parentMessageId=reduced.get("parentMessageId"),
            ),
            http_factory=self._http_factory,
            flow_variables=self._state.variables,
            step=settings.function,
        )
        once = threading.Lock()
        job = current_job()

        def seal() -> None:
            attempt.sealed = True
            outbox.seal(lambda failures: self._complete(ticket, run.outcome, failures, router))

        def on_timeout() -> None:
            if job is not None:
                stop_job(run, job, settings.message_timeout)
            else:
                run.stop(settings.message_timeout)
            if once.acquire(blocking=False):
                slot.release()  # the stuck thread keeps running, but not in our count
                seal()

        deadline = WATCHDOG.arm(settings.message_timeout, on_timeout)
        started = time.monotonic()
        run.run_here()
        metrics.step_finished(settings.function, time.monotonic() - started)
        deadline.cancel()
        if once.acquire(blocking=False):
            seal()  # settled by _complete, once the broker confirmed every publish

    def _complete(
        self,
        ticket: Ticket,
        outcome: Outcome,
        failures: list[BaseException],
        router: EventRouter,
    ) -> None:
        """Decide the message's fate once every publish of it is confirmed (or failed)."""
        try:
            if outcome.undelivered is not None or any(
                not isinstance(f, UnroutableError) for f in failures
            ):
                reason = outcome.undelivered or next(
                    f for f in failures if not isinstance(f, UnroutableError)
                )
                _log.error(
                    "events_not_published_message_requeued",
                    messageId=ticket.message_id,
                    reason=str(reason),
                )
                self._ledger.settle(ticket, "requeue")
            elif failures:
                # Returned as unroutable: say so in an error event, then reject (needs a
                # thread that may wait for the broker, so not the I/O thread).
                self._runners.submit(lambda: self._report_unroutable(ticket, failures, router))
            else:
                self._ledger.settle(ticket, "reject" if outcome.failed else "ack")
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave it unsettled
            _log.error("delivery_failed", messageId=ticket.message_id, reason=repr(exc)[:500])
            self._ledger.settle(ticket, "reject")

    def _report_unroutable(
        self, ticket: Ticket, failures: list[BaseException], router: EventRouter
    ) -> None:
        verdict: Settlement = "reject"
        try:
            router.error_now(error_payload(DeliveryFailed("; ".join(str(f) for f in failures))))
        except Exception as exc:  # noqa: BLE001 - cannot even report: let it come back
            _log.error("error_not_published", messageId=ticket.message_id, reason=str(exc))
            verdict = "requeue"
        self._ledger.settle(ticket, verdict)


def _raising(error: BaseException) -> Callable[..., Any]:
    def process(*_args: Any) -> Any:
        raise error

    return process


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
