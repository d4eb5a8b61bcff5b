"""Starting polling flows: a message to the first step on each tick of the flow's ``cron``.

Only flows whose first step is a trigger are scheduled (a flow starting with an action waits
for messages sent to it). ``cron`` has the platform's five fields (read by croniter, in UTC); a
flow without one is started every three minutes, as the platform does. ``local.every``
(``"5s"``) overrides both, for demos. Each tick is an execution of its own: a new ``threadId``,
an empty body, as the platform's scheduler sends. ``platform trigger`` sends one tick now.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from croniter import croniter

from runtime.devtools.localplatform import messaging
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.errors import ConfigError
from runtime.log import get_logger
from runtime.worker.amqp import AdminClient

_log = get_logger(__name__)
PLATFORM_DEFAULT_CRON = "*/3 * * * *"


def cron_of(flow: GraphFlow) -> str:
    cron = (flow.cron or PLATFORM_DEFAULT_CRON).strip()
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ConfigError(
            f"flow {flow.id}: cron {cron!r} is not a cron expression of five fields "
            "(minute hour day month weekday), such as '*/5 * * * *'"
        )
    return cron


def seconds_to_next(flow: GraphFlow, now: datetime) -> float:
    """How long until the flow's next tick."""
    every = flow.every_seconds()
    if every is not None:
        return every
    following: datetime = croniter(cron_of(flow), now).get_next(datetime)
    return max(0.0, (following - now).total_seconds())


def tick(flow: GraphFlow, admin: AdminClient) -> str:
    """One execution of the flow, started now; its threadId."""
    thread = str(uuid.uuid4())
    messaging.send(flow.step(flow.first), admin, {}, headers={"threadId": thread})
    return thread


class Scheduler:
    """A thread per polling flow, sending its ticks until stopped."""

    def __init__(self, flows: list[GraphFlow]) -> None:
        self.flows = [f for f in flows if f.polls]
        for flow in self.flows:
            if flow.every_seconds() is None:
                cron_of(flow)  # refuse a bad one before anything starts
        self.ticks = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Scheduler:
        for flow in self.flows:
            thread = threading.Thread(target=self._run, args=(flow,), name="scheduler",
                                      daemon=True)  # fmt: skip
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _run(self, flow: GraphFlow) -> None:
        step = flow.step(flow.first)
        while not self._stop.wait(seconds_to_next(flow, datetime.now(UTC))):
            try:
                with AdminClient(step.amqp_url, name="platform-scheduler") as admin:
                    thread = tick(flow, admin)
                self.ticks += 1
                _log.info("flow_started", flow=flow.id, threadId=thread)
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                _log.warning("tick_failed", flow=flow.id, error=str(exc))
