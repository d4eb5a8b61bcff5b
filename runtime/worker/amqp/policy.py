"""How hard the broker tries: reconnecting lost connections, re-sending refused publishes,
and how long each connection has been down."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pika.exceptions

_NOT_FOUND = 404


@dataclass(frozen=True)
class Reconnect:
    """How hard to try when the broker goes away."""

    first_delay: float = 0.1
    max_delay: float = 5.0
    startup_attempts: int = 4
    deadline: float = 300.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class PublishRetry:
    """How a publish the broker refused (nack) is sent again, as the sailor's settings say:
    after ``min(delay·2^i, max_delay)`` seconds, at most ``attempts`` times (within the
    publish's own deadline either way)."""

    delay: float = 0.1
    attempts: float = math.inf
    max_delay: float = 300.0

    def wait(self, attempt: int) -> float:
        return float(min(self.max_delay, self.delay * 2 ** max(0, attempt - 1)))


@dataclass
class Outage:
    """How long one of the two connections has been down, and how often we tried."""

    attempts: int = 0
    since: float | None = None

    def record(self) -> None:
        self.attempts += 1
        if self.since is None:
            self.since = time.monotonic()

    def clear(self) -> None:
        self.attempts = 0
        self.since = None


def is_not_found(reason: BaseException) -> bool:
    return (
        isinstance(reason, pika.exceptions.ChannelClosedByBroker)
        and reason.reply_code == _NOT_FOUND
    )


def describe(reason: BaseException) -> str:
    refused = (
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
    )
    if isinstance(reason, refused):
        return "the broker refused the user name or password (check ELASTICIO_AMQP_URI)"
    return str(reason) or type(reason).__name__


@dataclass(frozen=True)
class Recovery:
    """How the broker recovers: noticing a silent node (``heartbeat``), reconnecting lost
    connections, sending again publishes the broker refused, and ``on_fatal``, called once if
    the broker stays unreachable past the reconnect deadline."""

    reconnect: Reconnect = field(default_factory=Reconnect)
    publish_retry: PublishRetry = field(default_factory=PublishRetry)
    on_fatal: Callable[[BaseException], None] | None = None
    heartbeat: int | None = None
    """Seconds of the connections' heartbeat, unless a node's URL gives one; None: the
    broker's. pika closes a connection it has not heard from in 2 * (this + 5) s at most."""
