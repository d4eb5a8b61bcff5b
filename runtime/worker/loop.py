"""The worker: each delivery through the step, settled only when safe.

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

Who does what: ``Worker`` takes deliveries and hands them to a path; ``Preparation``
(read, build the call, fetch stored bodies) and ``Completion`` (seal, verdict, last resort)
serve both paths, ``SyncPath`` (runner threads) and ``AsyncPath`` (the event loop);
runtime.worker.assembly builds them all from the settings. docs/architecture.md walks
one message through.
"""

from __future__ import annotations

from typing import Any

from runtime.auth.async_session import HttpPool
from runtime.step.events import error_payload
from runtime.step.runners import RunnerPool
from runtime.worker import headers
from runtime.worker.async_path import AsyncPath
from runtime.worker.crypto import MessageCipher
from runtime.worker.key_retries import Unsaved
from runtime.worker.keys import KeySaver
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ledger, Run
from runtime.worker.sync_path import SyncPath
from runtime.worker.transport import Delivery


class Worker:
    """Takes each delivery of one step and runs it on the step's path; its collaborators
    are made by runtime.worker.assembly (``assemble_worker``).

    Args:
        ledger: every delivery's fate, from arrival to settle.
        path: how the step runs: a ``SyncPath`` or an ``AsyncPath``.
        keys: saves refreshed keys.
        runners: the threads sync steps and blocking reports run on.
        http_pool: the async sessions' connections (closed by the caller).
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        path: SyncPath | AsyncPath,
        keys: KeySaver,
        runners: RunnerPool,
        http_pool: HttpPool,
    ) -> None:
        self._ledger = ledger
        self._path = path
        self._keys = keys
        self._runners = runners
        self.http_pool = http_pool

    @property
    def stuck_threads(self) -> int:
        """Step threads stopped by a timeout that never returned (blocked in C code)."""
        return self._runners.retired

    def on_delivery(self, delivery: Delivery) -> None:
        """Called on the broker's I/O thread: decide, hand a message to run over."""
        admission = self._ledger.receive(delivery)
        if not isinstance(admission, Run):
            return
        self._path.take(admission.ticket)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivery taken so far is settled; False if time ran out."""
        return self._ledger.wait_idle(timeout)

    def settle_keys(self, timeout: float) -> list[Unsaved]:
        """Keep saving refreshed keys the platform has not taken, for up to ``timeout``
        seconds; those still unsaved then."""
        return self._keys.settle(timeout)


def report_startup_error(
    publisher: Publisher, settings: Settings, cipher: MessageCipher, error: BaseException
) -> None:
    """Publish a start-up failure as the sailor does: an error envelope, no errorInput."""
    from runtime.worker.wire import error_envelope

    body, _ = error_envelope(error_payload(error), None, cipher)
    step_headers: dict[str, Any] = headers.step_ids(settings)
    publisher.send(settings.error_routing_key, body, step_headers)
