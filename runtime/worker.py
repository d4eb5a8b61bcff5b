"""The worker's message loop: each delivery through the step, settled only when safe.

For every delivery, on a runner thread: drop it if it is a copy of a message in progress;
decode it (or reject it, logged without its content); fetch bodies kept in object storage;
run the step with a deadline, handing each event to the broker as it is emitted. Once the
step has ended and the broker confirmed every publish of the message, the broker's I/O
thread acks it, or rejects it when an error came before ``end`` (the sailor's rule), or
requeues it when an event could not be published at all. Nothing is acked before every
event it produced was confirmed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter

from runtime import headers
from runtime.amqp import Broker
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.step_http import session_factory
from runtime.component import Component
from runtime.crypto import MessageCipher
from runtime.dedup import AlreadyDone, Deduper, Duplicate
from runtime.dispatch import EventRouter, Throttles
from runtime.errors import TransportError
from runtime.events import Message, error_payload
from runtime.executor import DeliveryFailed, Outcome, StepRun, stop_job
from runtime.keys import KeySaver
from runtime.log import get_logger
from runtime.object_storage import ObjectStorage, ObjectStorageError, references_objects, resolve
from runtime.outbox import Outbox
from runtime.platform_api import PlatformApi
from runtime.publisher import Publisher
from runtime.runners import RunnerPool, current_job
from runtime.settings import Settings
from runtime.step_state import StepState
from runtime.steps import Step
from runtime.transport import Delivery, Settlement, UnroutableError
from runtime.watchdog import WATCHDOG
from runtime.wire import BadMessage, decode

SETTLE_TIMEOUT = 10.0
_log = get_logger("runtime.worker")


class Worker:
    """Processes deliveries of one step. The broker, API and state are made by the caller."""

    def __init__(
        self,
        *,
        settings: Settings,
        component: Component,
        step: Step,
        broker: Broker,
        api: PlatformApi,
        state: StepState,
        cipher: MessageCipher,
        lock: CredentialLock = IN_PROCESS,
    ) -> None:
        self._settings = settings
        self._step = step
        self._broker = broker
        self._state = state
        self._cipher = cipher
        self._publisher = Publisher(broker, settings)
        self._throttles = Throttles(settings)
        self._keys = KeySaver(settings, state, api, self._publisher, cipher)
        self._dedup = Deduper()
        self._runners = RunnerPool("message")
        # The broker's prefetch already bounds the messages in flight; a semaphore only
        # matters when fewer threads than that were asked for.
        limited = settings.thread_pool_size < settings.rabbitmq_prefetch_sailor
        self._slots = threading.BoundedSemaphore(settings.thread_pool_size) if limited else None
        self._active = 0
        self._idle = threading.Condition()
        pool = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, settings.thread_pool_size))
        self._http_factory = session_factory(
            component.credential_fields(), adapter=pool, fresh_cfg=self._fresh_cfg, lock=lock
        )
        self._api = api
        self._storage = ObjectStorage(
            settings.object_storage_uri,
            settings.object_storage_token,
            cipher,
            flow_id=settings.flow_id,
            step_id=settings.step_id,
        )

    def _fresh_cfg(self) -> dict[str, Any]:
        """The step's configuration as the platform has it now, saved keys laid over it."""
        config = self._api.step(self._settings.flow_id, self._settings.step_id).get("config")
        return {**self._state.cfg(), **(config if isinstance(config, dict) else {})}

    @property
    def stuck_threads(self) -> int:
        """Step threads stopped by a timeout that never returned (blocked in C code)."""
        return self._runners.retired

    def on_delivery(self, delivery: Delivery) -> None:
        """Called on the broker's I/O thread: hand the delivery to a runner and return."""
        with self._idle:
            self._active += 1
        self._runners.submit(lambda: self._guarded(delivery))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivery taken so far is settled; False if time ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    # --- one delivery, on a runner thread -----------------------------------------------

    def _guarded(self, delivery: Delivery) -> None:
        settled_here = True
        try:
            settled_here = self._process(delivery)
        except Exception:  # noqa: BLE001 - a bug here must not stop the next message
            _log.exception("delivery_failed", tag=delivery.tag)
        finally:
            if settled_here:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def _process(self, delivery: Delivery) -> bool:
        """True when this call settled the delivery; False when that happens later, elsewhere."""
        message_id = delivery.headers.get("messageId")
        if not message_id:
            _log.error("message_rejected", reason="no messageId header", tag=delivery.tag)
            self._settle_once(delivery, "reject")
            return True
        message_id = str(message_id)
        # Copies of a message in progress are settled without a slot: the first copy,
        # which holds one, settles them when it finishes.
        decision = self._dedup.begin(message_id, delivery)
        if isinstance(decision, Duplicate):
            _log.warning("redelivery_of_message_in_progress", messageId=message_id)
            return True
        if isinstance(decision, AlreadyDone):
            self._settle_once(delivery, decision.verdict)
            return True
        if self._slots is not None:
            self._slots.acquire()
        slot = _Slot(self._slots)
        settled_here = True
        try:
            try:
                message = decode(delivery, self._cipher, self._settings.input_format)
            except BadMessage as exc:
                _log.error("message_rejected", reason=str(exc), messageId=message_id)
                self._settle(message_id, "reject")
                return True
            settled_here = self._run(message_id, delivery, message, slot)
            return settled_here
        finally:
            if settled_here:
                slot.release()

    def _run(self, message_id: str, delivery: Delivery, message: Message, slot: _Slot) -> bool:
        settings = self._settings
        process = self._step.process
        if self._step.spec.auto_resolve_object_references and references_objects(message):
            try:
                resolve(self._storage, message, message_id)
            except ObjectStorageError as exc:
                process = _raising(exc)  # reported as the message's error, then rejected
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
            outbox.seal(lambda failures: self._complete(message_id, run.outcome, failures, router))

        def on_timeout() -> None:
            if job is not None:
                stop_job(run, job, settings.message_timeout)
            else:
                run.stop(settings.message_timeout)
            if once.acquire(blocking=False):
                slot.release()  # the stuck thread keeps running, but not in our count
                seal()

        deadline = WATCHDOG.arm(settings.message_timeout, on_timeout)
        run.run_here()
        deadline.cancel()
        if not once.acquire(blocking=False):
            return False
        slot.release()
        seal()
        return False  # settled by _complete, once the broker confirmed every publish

    def _complete(
        self,
        message_id: str,
        outcome: Outcome,
        failures: list[BaseException],
        router: EventRouter,
    ) -> None:
        """Decide the message's fate once every publish of it is confirmed (or failed)."""
        if outcome.undelivered is not None or any(
            not isinstance(f, UnroutableError) for f in failures
        ):
            reason = outcome.undelivered or next(
                f for f in failures if not isinstance(f, UnroutableError)
            )
            _log.error(
                "events_not_published_message_requeued", messageId=message_id, reason=str(reason)
            )
            self._settle_soon(message_id, "requeue")
        elif failures:
            # Returned as unroutable: say so in an error event, then reject (needs a thread
            # that may wait for the broker, so not the I/O thread).
            self._runners.submit(lambda: self._report_unroutable(message_id, failures, router))
        else:
            self._settle_soon(message_id, "reject" if outcome.failed else "ack")

    def _report_unroutable(
        self, message_id: str, failures: list[BaseException], router: EventRouter
    ) -> None:
        verdict: Settlement = "reject"
        try:
            router.error_now(error_payload(DeliveryFailed("; ".join(str(f) for f in failures))))
        except Exception as exc:  # noqa: BLE001 - cannot even report: let it come back
            _log.error("error_not_published", messageId=message_id, reason=str(exc))
            verdict = "requeue"
        self._settle_soon(message_id, verdict)

    def _settle_soon(self, message_id: str, verdict: Settlement) -> None:
        self._broker.call_soon(lambda: self._settle_here(message_id, verdict))

    def _settle_here(self, message_id: str, verdict: Settlement) -> None:
        """On the I/O thread: settle the newest copy of the message, then count it done."""
        try:
            delivery: Delivery | None = self._dedup.latest(message_id)
            while delivery is not None:
                applied = self._broker.settle_here(delivery, verdict)
                if not applied:
                    _log.warning("settle_deferred_until_redelivery", verdict=verdict)
                delivery = self._dedup.finish(message_id, verdict, delivery, applied)
        finally:
            self._done()

    def _settle(self, message_id: str, verdict: Settlement) -> None:
        """From a runner thread: settle and wait (bad input, before any publish)."""
        delivery: Delivery | None = self._dedup.latest(message_id)
        while delivery is not None:
            applied = self._settle_once(delivery, verdict)
            delivery = self._dedup.finish(message_id, verdict, delivery, applied)

    def _settle_once(self, delivery: Delivery, verdict: Settlement) -> bool:
        try:
            applied: bool = self._broker.settle(delivery, verdict).wait(SETTLE_TIMEOUT)
        except TransportError:
            applied = False
        if not applied:
            _log.warning("settle_deferred_until_redelivery", verdict=verdict, tag=delivery.tag)
        return applied


def _raising(error: BaseException) -> Callable[..., Any]:
    def process(*_args: Any) -> Any:
        raise error

    return process


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
    from runtime.wire import error_envelope

    body, _ = error_envelope(error_payload(error), None, cipher)
    step_headers: dict[str, Any] = headers.step_ids(settings)
    publisher.send(settings.error_routing_key, body, step_headers)
