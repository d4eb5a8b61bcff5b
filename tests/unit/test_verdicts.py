"""The verdict table: how a message's way through the worker ended decides ack, reject or
requeue (the same rules run end to end in test_worker_core and against a real broker)."""

from __future__ import annotations

import pytest

from runtime.step.run_state import Outcome
from runtime.worker import verdicts
from runtime.worker.transport import UnroutableError

LOST = ConnectionError("the publishing connection closed before the confirm")
RETURNED = UnroutableError("NO_ROUTE: nothing bound to the data routing key")


@pytest.mark.parametrize(
    ("outcome", "failures", "verdict"),
    [
        (Outcome(events=2), [], "ack"),
        (Outcome(events=2, errors=1, errors_before_end=1), [], "reject"),
        (Outcome(events=3, errors=1, errors_before_end=0), [], "ack"),  # error after end
        (Outcome(events=1), [LOST], "requeue"),
        (Outcome(events=1, undelivered=LOST), [], "requeue"),
        (Outcome(events=2), [RETURNED, LOST], "requeue"),  # the lost one wins: it comes back
        (Outcome(events=1, errors=1, errors_before_end=1), [LOST], "requeue"),
    ],
)
def test_a_message_is_settled_by_how_it_ended(outcome, failures, verdict):
    decision = verdicts.once_published(outcome, failures)
    assert decision.verdict == verdict
    assert (decision.lost is not None) == (verdict == "requeue")


def test_a_requeue_names_what_could_not_be_published():
    assert verdicts.once_published(Outcome(undelivered=LOST), []).lost is LOST
    assert verdicts.once_published(Outcome(), [RETURNED, LOST]).lost is LOST


def test_returned_publishes_are_said_in_an_error_event_before_the_reject():
    decision = verdicts.once_published(Outcome(events=2), [RETURNED])
    assert decision.unroutable == (RETURNED,)
    assert decision.verdict == "reject"
    assert verdicts.once_published(Outcome(events=2), []).unroutable == ()


def test_a_failure_that_could_not_even_be_reported_comes_back():
    assert verdicts.once_reported(True) == "reject"
    assert verdicts.once_reported(False) == "requeue"
    assert verdicts.UNREADABLE == "reject"
