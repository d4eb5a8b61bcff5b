"""What the worker counts for Prometheus, and nothing when nobody asked.

Every part of the runtime reports through the functions below (a delivery received, an
event emitted, a token refresh and how it ended). Until ``enable`` is called they return at
once; the worker calls it when ``ELASTICIO_METRICS_PORT`` is set, and ``runtime.worker.probes``
serves the registry it returns. Labels stay few and bounded: the step's function, the event
kind, an outcome, a connection role; never a message id, an account or a URL.

Metric names (all prefixed ``eio_``)::

    messages_received_total, messages_settled_total{outcome}, messages_in_flight,
    received_bytes_total, published_bytes_total, events_emitted_total{kind},
    step_duration_seconds{step}, publish_confirm_seconds, amqp_reconnects_total{connection},
    token_refreshes_total{outcome}, token_refresh_seconds{outcome},
    credential_lock_wait_seconds
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    platform_collector,
    process_collector,
)

RefreshOutcome = Literal["ok", "invalid_grant", "transient", "error"]

# Steps that call APIs take tens of milliseconds to minutes; confirms take milliseconds.
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_CONFIRM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
_REFRESH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"eio_{name}", text, labels, registry=registry)

        self.received = counter("messages_received", "Deliveries taken from the step's queue")
        self.settled = counter(
            "messages_settled", "Deliveries acked, rejected or requeued", ("outcome",)
        )
        self.in_flight = Gauge(
            "eio_messages_in_flight", "Deliveries taken and not yet settled", registry=registry
        )
        self.bytes_in = counter("received_bytes", "Bytes of message bodies received")
        self.bytes_out = counter("published_bytes", "Bytes of message bodies published")
        self.emitted = counter("events_emitted", "Events the step emitted", ("kind",))
        self.step_seconds = Histogram(
            "eio_step_duration_seconds", "Time a step took on one message", ("step",),
            buckets=_STEP_BUCKETS, registry=registry,
        )  # fmt: skip
        self.confirm_seconds = Histogram(
            "eio_publish_confirm_seconds", "From handing a publish to the broker to its confirm",
            buckets=_CONFIRM_BUCKETS, registry=registry,
        )  # fmt: skip
        self.reconnects = counter(
            "amqp_reconnects", "AMQP connections reopened after a loss", ("connection",)
        )
        self.refreshes = counter("token_refreshes", "OAuth2 token calls", ("outcome",))
        self.refresh_seconds = Histogram(
            "eio_token_refresh_seconds", "Time of OAuth2 token calls", ("outcome",),
            buckets=_REFRESH_BUCKETS, registry=registry,
        )  # fmt: skip
        self.lock_wait = Histogram(
            "eio_credential_lock_wait_seconds",
            "Time waiting for the credential lock before a refresh (shared by replicas)",
            buckets=_REFRESH_BUCKETS, registry=registry,
        )  # fmt: skip


_on: _Metrics | None = None


def enable() -> CollectorRegistry:
    """Start counting; the registry holds the worker's metrics and its process's."""
    global _on  # noqa: PLW0603 - one switch for the process, read on every count
    registry = CollectorRegistry()
    process_collector.ProcessCollector(registry=registry)
    platform_collector.PlatformCollector(registry=registry)
    _on = _Metrics(registry)
    return registry


def disable() -> None:
    global _on  # noqa: PLW0603 - one switch for the process, read on every count
    _on = None


def received(size: int) -> None:
    if _on is not None:
        _on.received.inc()
        _on.bytes_in.inc(size)


def settled(outcome: str) -> None:
    if _on is not None:
        _on.settled.labels(outcome).inc()


def in_flight_from(read: Callable[[], float]) -> None:
    """The messages in flight are read when scraped, from whoever keeps their count."""
    if _on is not None:
        _on.in_flight.set_function(read)


def emitted(kind: str) -> None:
    if _on is not None:
        _on.emitted.labels(kind).inc()


def step_finished(step: str, seconds: float) -> None:
    if _on is not None:
        _on.step_seconds.labels(step).observe(seconds)


def published(size: int) -> None:
    if _on is not None:
        _on.bytes_out.inc(size)


def confirmed(seconds: float) -> None:
    if _on is not None:
        _on.confirm_seconds.observe(seconds)


def reconnected(connection: str) -> None:
    if _on is not None:
        _on.reconnects.labels(connection).inc()


def token_refresh(outcome: RefreshOutcome, seconds: float) -> None:
    if _on is not None:
        _on.refreshes.labels(outcome).inc()
        _on.refresh_seconds.labels(outcome).observe(seconds)


def lock_waited(seconds: float) -> None:
    if _on is not None:
        _on.lock_wait.observe(seconds)
