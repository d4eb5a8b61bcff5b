"""Asking the broker the tests use what only its operator sees: how many messages a queue
holds delivered and unacknowledged, which connections a test's workers opened, and closing
them as an operator would.

Neither AMQP nor the management API will do: AMQP cannot see unacknowledged messages or
close another client's connection, and the management API's queue figures are samples up to
five seconds old (a fresh queue reads as settled before its first message is counted). So
the broker's own ``rabbitmqctl`` is asked: the one on this machine for a broker on loopback,
the one inside its container for a testcontainers broker, or the command prefix in
``RABBITMQ_CTL`` for any other (``docker exec rabbit rabbitmqctl``, ``kubectl exec
rabbit-0 -- rabbitmqctl``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class QueueState:
    ready: int
    unacked: int
    consumers: int


class BrokerControl:
    """``rabbitmqctl`` of one broker, through a command prefix."""

    def __init__(self, prefix: list[str]) -> None:
        self.prefix = prefix

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [*self.prefix, "-q", *args], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{shlex.join([*self.prefix, *args])} failed: {done.stderr.strip()[:500]}"
            )
        return done.stdout

    def queue(self, name: str) -> QueueState | None:
        listing = self._run(
            "list_queues", "--no-table-headers",
            "name", "messages_ready", "messages_unacknowledged", "consumers",
        )  # fmt: skip
        for row in (line.split("\t") for line in listing.splitlines()):
            if row[0] == name:
                ready, unacked, consumers = (int(v) for v in row[1:4])
                return QueueState(ready, unacked, consumers)
        return None

    def close_connections_named(self, name: str, reason: str) -> int:
        """Close every connection whose client called itself ``name``; how many."""
        listing = self._run("list_connections", "pid", "client_properties")
        closed = 0
        for line in listing.splitlines():
            if f'"{name}"' in line:
                self._run("close_connection", line.split()[0], reason)
                closed += 1
        return closed


def control_for(amqp_url: str, container_id: str | None = None) -> BrokerControl:
    """The ``rabbitmqctl`` that answers for the broker at ``amqp_url``."""
    configured = os.environ.get("RABBITMQ_CTL")
    if configured:
        return BrokerControl(shlex.split(configured))
    if container_id is not None:
        return BrokerControl(["docker", "exec", container_id, "rabbitmqctl"])
    host = urlsplit(amqp_url.split(",", 1)[0]).hostname or ""
    local = shutil.which("rabbitmqctl")
    if host in LOOPBACK and local is not None:
        return BrokerControl([local])
    raise AssertionError(
        f"the tests cannot inspect the broker at {host or amqp_url}: set RABBITMQ_CTL to a "
        "command that runs its rabbitmqctl (for example 'docker exec rabbit rabbitmqctl')"
    )
