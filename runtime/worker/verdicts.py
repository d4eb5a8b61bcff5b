"""How a message's way through the worker ended decides its verdict, in one table.

==========================================================  =================================
how it ended                                                verdict
==========================================================  =================================
its bytes could not be read as a message                    reject
an event could not be published at all                      requeue (the ledger bounds it)
every event published, some returned unroutable             an error event, then reject
the step emitted an error before ``end``                    reject (the sailor's rule)
the step ended                                              ack
the worker itself failed on the way (the last resort)       an error event, then reject
an error event that could not be published either           requeue
==========================================================  =================================

The worker asks here and performs the answer; the ledger (``runtime.worker.settlement``)
makes sure a delivery is settled once and a requeue cannot loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runtime.step.run_state import Outcome
from runtime.worker.transport import Settlement, UnroutableError

UNREADABLE: Settlement = "reject"


@dataclass(frozen=True)
class Decision:
    verdict: Settlement
    lost: BaseException | None = None
    """For a requeue: what could not be published."""
    unroutable: tuple[BaseException, ...] = ()
    """Publishes the broker returned: said in an error event before the verdict is given."""


def once_published(outcome: Outcome, failures: Sequence[BaseException]) -> Decision:
    """The verdict once the step ended and every publish of the message was answered."""
    lost = [f for f in failures if not isinstance(f, UnroutableError)]
    if outcome.undelivered is not None or lost:
        return Decision("requeue", lost=outcome.undelivered or lost[0])
    if failures:
        return Decision("reject", unroutable=tuple(failures))
    return Decision("reject" if outcome.failed else "ack")


def once_reported(reported: bool) -> Settlement:
    """A failure said in an error event is rejected; one that could not even be said comes
    back, so that it is not lost without a word."""
    return "reject" if reported else "requeue"
