"""Two replicas of a step, each with its own broker connection (in memory) and one store they
share (a folder, as ``ELASTICIO_CREDENTIAL_LOCK_URL=file:///DIR`` gives): a message whose
connection died under one of them runs on neither twice."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from tests.fakes import MemoryBroker
from tests.unit.test_worker_core import bodies, message, worker_for

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["file", "redis"])
def replicas(request, tmp_path, gated):
    """Two replicas sharing a store; a flow id of this test's own, and with Redis, the
    keys it wrote removed afterwards (the broker and Redis are shared with others)."""
    flow = f"flow-{uuid.uuid4().hex[:8]}"
    url = f"file://{tmp_path}" if request.param == "file" else REDIS_URL
    first, second = MemoryBroker(), MemoryBroker()
    made = (
        (first, worker_for(first, "gated", credential_lock_url=url, flow_id=flow)),
        (second, worker_for(second, "gated", credential_lock_url=url, flow_id=flow)),
    )
    yield made
    if request.param == "redis":
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"eio:delivery:{flow}_step_2.*"):
            client.delete(key)


def test_a_redelivery_waits_for_the_run_still_going_on_the_other_replica(replicas, gated):
    (broker_a, worker_a), (broker_b, worker_b) = replicas
    body, headers = message({"n": 1})
    original = broker_a.deliver(body, headers)
    gated.wait_held(1)  # running on A
    broker_a.reconnect()  # A's read connection dies; the broker hands the message to B
    copy = broker_b.deliver(body, headers, redelivered=True)
    broker_a.drain()
    broker_b.drain()
    assert broker_b.verdict(copy) is None and gated.runs == 1  # B waits for A's verdict
    gated.gate.set()
    broker_b.wait_for(lambda: broker_b.verdict(copy) is not None)
    assert broker_b.verdict(copy) == "ack"  # A's verdict, on B's copy
    assert gated.runs == 1
    assert broker_a.verdict(original) is None  # A's settle had nowhere to go
    assert len(bodies(broker_a)) == 1 and bodies(broker_b) == []
    assert worker_a.wait_idle(5) and worker_b.wait_idle(5)


def test_a_message_settled_just_before_its_node_died_is_not_run_again(replicas, gated):
    (broker_a, worker_a), (broker_b, worker_b) = replicas
    gated.gate.set()
    body, headers = message({"n": 2})
    broker_a.deliver(body, headers)
    broker_a.drain()
    assert worker_a.wait_idle(5)  # run and acked on A...
    broker_a.drain()
    broker_a.reconnect()  # ...and the ack died with the node
    broker_a.drain()
    copy = broker_b.deliver(body, headers, redelivered=True)
    broker_b.wait_for(lambda: broker_b.verdict(copy) is not None)
    assert broker_b.verdict(copy) == "ack"
    assert gated.runs == 1
    assert worker_b.wait_idle(5)


def test_a_redelivery_nobody_speaks_for_runs_after_the_grace(replicas, gated):
    (_, _), (broker_b, worker_b) = replicas
    gated.gate.set()
    copy = broker_b.deliver(*message({"n": 3}, "m-3"), redelivered=True)  # its replica died
    broker_b.wait_for(lambda: broker_b.verdict(copy) is not None)
    assert broker_b.verdict(copy) == "ack"
    assert gated.runs == 1
    assert bodies(broker_b) == [{"n": 3}]
    assert worker_b.wait_idle(5)


def test_without_a_reachable_store_the_worker_decides_alone(tmp_path, gated):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    broker = MemoryBroker()
    worker = worker_for(broker, "gated", credential_lock_url=f"file://{blocked}")
    gated.gate.set()
    copy = broker.deliver(*message({"n": 4}, "m-4"), redelivered=True)
    broker.wait_for(lambda: broker.verdict(copy) is not None)
    assert broker.verdict(copy) == "ack"
    assert gated.runs == 1
    assert worker.wait_idle(5)
