"""A message's end: once its step ended and the broker confirmed (or failed) every publish,
the verdicts table (runtime.worker.verdicts) says what the ledger does with it; and the
last resort, for whatever failed on the way."""

from __future__ import annotations

from runtime.log import get_logger
from runtime.network import in_words
from runtime.redact import SECRETS
from runtime.step.events import error_payload
from runtime.step.run_state import DeliveryFailed, Outcome
from runtime.step.runners import RunnerPool
from runtime.worker import verdicts
from runtime.worker.dispatch import EventRouter
from runtime.worker.preparation import Attempt, Prepared
from runtime.worker.settlement import Ledger, Ticket

_log = get_logger(__name__)


class Completion:
    """Settles each message once its fate is known; ``runners`` report an unroutable
    publish (which waits for the broker: never on its I/O thread)."""

    def __init__(self, ledger: Ledger, runners: RunnerPool) -> None:
        self._ledger = ledger
        self._runners = runners

    def seal(self, attempt: Attempt, prepared: Prepared, outcome: Outcome) -> None:
        attempt.sealed = True
        ticket, router = attempt.ticket, prepared.router
        prepared.outbox.seal(lambda failures: self._complete(ticket, outcome, failures, router))

    def last_resort(self, attempt: Attempt, error: BaseException) -> None:
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


def _report(router: EventRouter, error: BaseException, message_id: str) -> bool:
    """Say ``error`` in the message's error event now (blocks); False if even that failed."""
    try:
        router.error_now(error_payload(error))
    except Exception as again:  # noqa: BLE001 - cannot even report it: the verdict says so
        _log.error("error_not_published", messageId=message_id, reason=str(again))
        return False
    return True
