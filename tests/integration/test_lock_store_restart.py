"""The credential lock's Redis restarts during a refresh storm of three replicas.

A Redis of the test's own, on a free port, is killed while every replica's token has just
expired, then started again on the same port. While it is down nothing is refreshed (the
messages that needed a token are rebounded, as the README says for ``errorPolicy:
rebound``); once it is back the same replicas, never restarted, use it again: one token
call per expiry, no ``invalid_grant``, every message answered.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from tests.helpers import ROOT, demo_oauth, wait_for
from tests.integration.conftest import unavailable

REPLICAS = 3
PER_ROUND = 6


class OwnRedis:
    """``redis-server`` on a free port of 127.0.0.1, nothing kept on disk."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, timeout=15, what=f"Redis on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis():
    if shutil.which("redis-server") is None:
        unavailable("needs redis-server to start a Redis of the test's own")
    own = OwnRedis()
    own.start()
    yield own
    own.kill()


@pytest.fixture
def provider():
    api = DemoApi(ProviderSettings(access_lifetime=300, token_delay=0.3)).start()
    yield api
    api.stop()


def test_replicas_survive_their_lock_store_restarting_mid_storm(step, provider, redis):
    config = {**demo_oauth(provider), "method": "GET", "url": "/records/{{body.id}}",
              "errorPolicy": "rebound"}  # fmt: skip
    harness = step("httpRequest", component=ROOT, config=config, prefetch=2)
    env = {"ELASTICIO_CREDENTIAL_LOCK_URL": redis.url,
           "ELASTICIO_REBOUND_INITIAL_EXPIRATION": "1500"}  # fmt: skip
    workers = [harness.start_worker(wait=False, **env) for _ in range(REPLICAS)]
    for worker in workers:
        worker.wait_for_log("worker_ready", timeout=60)
    pids = [w.process.pid for w in workers]
    answered: list[int] = []

    def storm(first: int) -> list[int]:
        provider.book.expire_all()  # every replica's token expires at once
        ids = list(range(first, first + PER_ROUND))
        for number in ids:
            harness.send({"id": number})
        return ids

    def lock_failures() -> int:
        return sum(w.text.count('"credential_lock_failed"') for w in workers)

    # Round 1: the lock works.
    ids = storm(1)
    answered += [m["payload"]["body"]["body"]["id"] for m in harness.take("message", PER_ROUND, 60)]
    assert provider.stats()["token_calls"] == 1

    # Round 2: Redis dies just as the tokens expire; the messages needing one rebound.
    redis.kill()
    ids += storm(1 + PER_ROUND)
    wait_for(lambda: lock_failures() >= PER_ROUND, timeout=60, what="the storm meeting the outage")
    assert provider.stats()["token_calls"] == 1, "a refresh happened without the lock"
    outage_failures = lock_failures()
    redis.start()  # the same port, empty: no lease, no stored keys
    back = harness.take("message", PER_ROUND, 90)
    answered += [m["payload"]["body"]["body"]["id"] for m in back]

    # Round 3: the lock is used again, by the same processes.
    ids += storm(1 + 2 * PER_ROUND)
    answered += [m["payload"]["body"]["body"]["id"] for m in harness.take("message", PER_ROUND, 60)]

    stats = provider.stats()
    print(json.dumps({"sent": len(ids), "data": len(answered), "token calls": stats["token_calls"],
                      "expiries": stats["expiries_met"], "lock failures during the outage":
                      outage_failures, "invalid_grant": stats["invalid_grants"]}))  # fmt: skip
    assert sorted(answered) == sorted(ids)
    assert stats["token_calls"] == 3  # one per expiry: none during the outage, none twice
    assert stats["invalid_grants"] == 0
    assert stats["reused_refresh_tokens"] == 0
    assert stats["revoked_grants"] == 0
    assert [w.process.pid for w in workers if w.process.poll() is None] == pids  # no restart
    assert harness.empty("error")
    later = [e for w in workers for e in w.logs if e.get("msg") == "token_refreshed"]
    assert len(later) == 3
