"""A RabbitMQ node dies under a worker: it moves to another node and nothing is lost.

A three-node cluster of its own (``runtime.devtools.cluster``: nodes ``t1``-``t3`` on ports
5691-5693, beside the broker on 5672), quorum queues, a worker at prefetch 10 given every
node. The worker reads from ``t1`` and publishes through ``t2``; the test's own connection
is on ``t3`` (where the queues' leaders start). Each test prints its counts: sent, data
received, duplicates, unacked left, seconds to recover.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runtime.devtools.cluster import Cluster
from runtime.devtools.localplatform import messaging
from runtime.worker.amqp import AdminClient
from tests.helpers import wait_for
from tests.integration.conftest import FLOWSTEPS, StepHarness, WorkerProcess, unavailable

pytestmark = pytest.mark.cluster

MESSAGES = 2000


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("rabbitmq-server") is None or os.geteuid() != 0:
        unavailable("the cluster tests need rabbitmq-server and root (to run it as rabbitmq)")
    running = Cluster(Path(tempfile.mkdtemp(prefix="cluster-test-")), prefix="t", first_port=5691)
    started = time.monotonic()
    running.up()
    print(json.dumps({"cluster up": running.urls, "seconds": round(time.monotonic() - started)}))
    yield running
    running.down()


def urls(cluster: Cluster, *names: str) -> str:
    return ",".join(cluster.node(name).url for name in names)


@pytest.fixture
def harness(cluster, platform_api):
    made = StepHarness(
        urls(cluster, "t3", "t1", "t2"),  # the test's own connection on t3
        platform_api,
        "work",
        component=FLOWSTEPS,
        queueType="quorum",
        prefetch=10,
    )
    yield made
    for worker in made.workers:
        worker.stop()
    fresh(made)
    made.close()


def fresh(harness: StepHarness) -> None:
    """A new connection for the test (its node may have restarted under the old one)."""
    try:
        harness.admin.close()
    except Exception:
        pass
    harness.admin = AdminClient(harness.flow.amqp_url, name="test")


def start(harness: StepHarness, cluster: Cluster, **env: str) -> WorkerProcess:
    worker = harness.start_worker(ELASTICIO_AMQP_URI=urls(cluster, "t1", "t2", "t3"), **env)
    wait_for(lambda: len(connected(worker)) >= 2, 30, "both connections open")
    return worker


def connected(worker: WorkerProcess) -> list[dict[str, Any]]:
    """Each connection opened, first or again, in order."""
    return [e for e in worker.logs if e.get("msg") in ("amqp_connected", "amqp_reconnected")]


def node_of(worker: WorkerProcess, role: str) -> str:
    return [e["node"] for e in connected(worker) if e["role"] == role][-1]


class Outputs:
    """The step's data messages, read from its output queue as they come."""

    def __init__(self, harness: StepHarness) -> None:
        self.harness = harness
        self.seen: Counter[int] = Counter()

    def read(self, count: int | None = None) -> None:
        """Read what is there, stopping at ``count`` distinct messages: a reader that
        drained greedily would not come back while the worker kept pace with it."""
        while count is None or len(self.seen) < count:
            got = self.harness.admin.get(self.harness.flow.output_queue("message"))
            if got is None:
                return
            event = messaging.read(self.harness.flow, "message", *got)
            self.seen[event["payload"]["body"]["n"]] += 1

    def until(self, count: int, timeout: float, *, then_all: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            self.read(count)
            time.sleep(0.02)
        if then_all:
            self.read()

    @property
    def duplicates(self) -> int:
        return sum(self.seen.values()) - len(self.seen)


def send_all(harness: StepHarness, count: int, sleep: float) -> None:
    for n in range(count):
        harness.send({"n": n, "sleep": sleep})


def sending(
    harness: StepHarness, count: int, sleep: float, *, second_half_after: threading.Event
) -> threading.Thread:
    """Send on a connection of its own (on the node no test kills) while the test reads: the
    first half at once, the second once ``second_half_after`` is set, so that the stream
    goes on past whatever the test does in between, however fast the worker is."""

    def send() -> None:
        with AdminClient(harness.flow.amqp_url, name="test-sender") as admin:
            for n in range(count):
                if n == count // 2:
                    second_half_after.wait()
                messaging.send(harness.flow, admin, {"n": n, "sleep": sleep})

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def settled(cluster: Cluster, harness: StepHarness, worker: WorkerProcess) -> dict[str, int]:
    """Wait for the step's queue to drain (nothing ready, nothing unacked) while the worker
    runs; then stop it gracefully and count what is left."""
    return all_settled(cluster, harness, [worker])


def logged(worker: WorkerProcess, msg: str, field: str | None = None) -> int:
    entries = [e for e in worker.logs if e.get("msg") == msg]
    return sum(int(e.get(field, 0)) for e in entries) if field else len(entries)


def report(name: str, outputs: Outputs, worker: WorkerProcess, **extra: Any) -> dict[str, Any]:
    line = {
        "test": name,
        "sent": MESSAGES,
        "data received": len(outputs.seen),
        "duplicates": outputs.duplicates,
        "republished unconfirmed": logged(worker, "republishing_unconfirmed", "count"),
        "settled on redelivery without running": logged(worker, "redelivery_settled_as_before"),
        "redelivered while running": logged(worker, "redelivery_of_message_in_progress"),
        **extra,
    }
    print(json.dumps(line))
    return line


def kill_mid_stream(cluster: Cluster, harness: StepHarness, role: str) -> dict[str, Any]:
    worker = start(harness, cluster)
    victim = cluster.node_at(node_of(worker, role))
    before = len([e for e in connected(worker) if e["role"] == role])
    killed = threading.Event()
    # 50 ms a message at prefetch 10: a quarter of the stream read, more of it in flight
    sender = sending(harness, MESSAGES, sleep=0.05, second_half_after=killed)
    outputs = Outputs(harness)
    outputs.until(MESSAGES // 4, 60, then_all=False)
    assert len(outputs.seen) >= MESSAGES // 4, "the worker was not running before the kill"
    killed_at = time.monotonic()
    cluster.kill(victim.name)
    killed.set()
    wait_for(lambda: len([e for e in connected(worker) if e["role"] == role]) > before, 60,
         f"the {role} connection on another node")  # fmt: skip
    recovered = round(time.monotonic() - killed_at, 2)
    assert node_of(worker, role) != f"127.0.0.1:{victim.port}"
    sender.join(120)
    outputs.until(MESSAGES, 120)
    line = report(f"{role} node killed", outputs, worker, **settled(cluster, harness, worker),
                  **{"seconds to reconnect": recovered, "node killed": victim.name})  # fmt: skip
    cluster.start(victim.name)
    return line


def test_the_node_of_the_consuming_connection_dies_mid_stream(cluster, harness):
    line = kill_mid_stream(cluster, harness, "read")
    assert line["data received"] == MESSAGES
    assert line["duplicates"] <= line["republished unconfirmed"]
    assert line["left in the queue"] == 0 and line["unacked left"] == 0


def test_the_node_of_the_publishing_connection_dies_mid_stream(cluster, harness):
    line = kill_mid_stream(cluster, harness, "write")
    assert line["data received"] == MESSAGES
    assert line["duplicates"] <= line["republished unconfirmed"]
    assert line["left in the queue"] == 0 and line["unacked left"] == 0


def test_a_rolling_restart_of_every_node_loses_nothing(cluster, harness):
    worker = start(harness, cluster)
    send_all(harness, MESSAGES, sleep=0.1)  # about 100 a second: the stream spans restarts
    outputs = Outputs(harness)
    outputs.until(MESSAGES // 10, 60, then_all=False)
    started = time.monotonic()
    for node in cluster.nodes:
        cluster.stop(node.name)
        cluster.start(node.name)
    restarts = round(time.monotonic() - started, 1)
    fresh(harness)
    outputs.until(MESSAGES, 120)
    line = report("rolling restart", outputs, worker, **settled(cluster, harness, worker),
                  **{"seconds of restarts": restarts,
                     "reconnections": len(connected(worker)) - 2})  # fmt: skip
    assert line["data received"] == MESSAGES
    assert line["duplicates"] <= line["republished unconfirmed"]
    assert line["left in the queue"] == 0 and line["unacked left"] == 0
    assert line["reconnections"] >= 2  # both connections moved at least once


def test_a_quorum_queues_delivery_count_bounds_requeues_across_workers(cluster, harness):
    """A message whose events cannot be published is requeued at most MAX_REQUEUES times,
    counted by the queue's ``x-delivery-count``: a second worker, knowing nothing of the
    first one's requeues, goes on counting from the header instead of starting again."""
    from runtime.worker.settlement import MAX_REQUEUES

    for kind in ("message", "error"):  # nowhere for the data or the error to go
        harness.admin.delete_queue(harness.flow.output_queue(kind))
    first = start(harness, cluster)
    harness.send({"n": 1, "sleep": 0.3})
    wait_for(lambda: logged(first, "error_not_published") >= 2, 60, "two requeues by the first")
    first.stop()  # killed: its memory of the requeues goes with it
    second = start(harness, cluster)
    wait_for(lambda: logged(second, "message_rejected") >= 1, 60, "the rejection")
    runs = logged(first, "error_not_published") + logged(second, "error_not_published")
    print(json.dumps({"test": "delivery count", "requeues by the first worker":
                      logged(first, "error_not_published"), "by the second":
                      logged(second, "error_not_published"), "limit": MAX_REQUEUES}))  # fmt: skip
    assert runs <= MAX_REQUEUES + 1  # without the header the second alone would requeue 5 more
    rejected = next(e for e in second.logs if e.get("msg") == "message_rejected")
    assert "rejected so it cannot loop" in rejected["reason"]
    wait_for(lambda: (cluster.queue(harness.flow.messages_queue) or (1, 1, 0))[:2] == (0, 0), 30,
         "the queue empty")  # fmt: skip


def test_a_frozen_node_is_left_within_the_heartbeats_bound(cluster, harness):
    """SIGSTOP of the read connection's node: its socket stays open and says nothing. The
    worker's heartbeat (5 s by default) has it leave within 2 * (5 + 5) s, and output goes
    on from another node while the frozen one is still frozen."""
    worker = start(harness, cluster)
    victim = cluster.node_at(node_of(worker, "read"))
    frozen = threading.Event()
    sender = sending(harness, MESSAGES, sleep=0.02, second_half_after=frozen)
    outputs = Outputs(harness)
    outputs.until(MESSAGES // 4, 60, then_all=False)
    cluster.freeze(victim.name)
    frozen_at = time.monotonic()
    frozen.set()
    try:
        before = len(outputs.seen)
        # Well under the 65-130 s that RabbitMQ's own 60 s heartbeat would take.
        outputs.until(before + 50, 45, then_all=False)
        silence = round(time.monotonic() - frozen_at, 1)
        assert len(outputs.seen) >= before + 50, "no output while the node was frozen"
        assert node_of(worker, "read") != f"127.0.0.1:{victim.port}"
    finally:
        cluster.thaw(victim.name)
    sender.join(120)
    outputs.until(MESSAGES, 120)
    line = report("read node frozen", outputs, worker, **settled(cluster, harness, worker),
                  **{"seconds until output went on": silence, "node frozen": victim.name})  # fmt: skip
    assert line["data received"] == MESSAGES
    assert line["duplicates"] <= line["republished unconfirmed"]
    assert line["left in the queue"] == 0 and line["unacked left"] == 0


def all_settled(
    cluster: Cluster, harness: StepHarness, workers: list[WorkerProcess]
) -> dict[str, int]:
    """``settled`` for several replicas of the step."""
    queue = harness.flow.messages_queue

    def drained() -> bool:
        counts = cluster.queue(queue)
        return counts is not None and counts[:2] == (0, 0)

    try:
        wait_for(drained, 90, f"{queue} drained")
    except AssertionError:
        for worker in workers:  # what each replica said, to see where a message stopped
            told = Counter(e.get("msg") for e in worker.logs if e.get("level") != "debug")
            print(json.dumps({"queue": cluster.queue(queue), "worker": dict(told)}))
        raise
    finally:
        for worker in workers:
            worker.signal()
        for worker in workers:
            assert worker.wait(60) == 0
    counts = cluster.queue(queue)
    assert counts is not None
    return {"left in the queue": counts[0], "unacked left": counts[1]}


def across(workers: list[WorkerProcess], msg: str, field: str | None = None) -> int:
    return sum(logged(worker, msg, field) for worker in workers)


@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("event", ["read node killed", "write node killed", "rolling restart"])
def test_replicas_sharing_a_store_run_no_message_twice(
    cluster, harness, redis_url, replicas, event
):
    """Replicas of one step, all reading through the same node, each told of the others'
    messages through Redis (ELASTICIO_CREDENTIAL_LOCK_URL): when a node goes, the
    redeliveries land on replicas that did not run them, and none runs again."""
    workers = [start(harness, cluster, ELASTICIO_CREDENTIAL_LOCK_URL=redis_url)
               for _ in range(replicas)]  # fmt: skip
    outputs = Outputs(harness)
    if event == "rolling restart":  # every node goes: the stream is sent before
        send_all(harness, MESSAGES, sleep=0.05)
        outputs.until(MESSAGES // 10, 60, then_all=False)
        for node in cluster.nodes:
            cluster.stop(node.name)
            cluster.start(node.name)
        fresh(harness)
    else:  # the test's own connection is on t3, which stays
        went = threading.Event()
        sender = sending(harness, MESSAGES, sleep=0.05, second_half_after=went)
        outputs.until(MESSAGES // 4, 60, then_all=False)
        victim = cluster.node_at(node_of(workers[0], event.split()[0]))
        cluster.kill(victim.name)
        went.set()
        sender.join(180)
    try:
        line = replicas_line(cluster, harness, workers, outputs, f"{replicas} replicas, {event}")
    finally:
        forget_words(redis_url, harness)
        if event != "rolling restart":
            cluster.start(victim.name)
    assert line["data received"] == MESSAGES
    assert line["duplicates"] <= line["republished unconfirmed"]  # 0 double runs
    assert line["left in the queue"] == 0 and line["unacked left"] == 0


def replicas_line(
    cluster: Cluster,
    harness: StepHarness,
    workers: list[WorkerProcess],
    outputs: Outputs,
    name: str,
) -> dict[str, Any]:
    outputs.until(MESSAGES, 180)
    republished = across(workers, "republishing_unconfirmed", "count")
    line = {
        "test": name,
        "sent": MESSAGES,
        "data received": len(outputs.seen),
        "duplicates": outputs.duplicates,
        "republished unconfirmed": republished,
        "double runs": max(0, outputs.duplicates - republished),
        "settled as another replica did": across(
            workers, "redelivery_settled_as_another_replica_did"
        ),
        "settled as before": across(workers, "redelivery_settled_as_before"),
        **all_settled(cluster, harness, workers),
    }
    print(json.dumps(line))
    return line


def forget_words(redis_url: str, harness: StepHarness) -> None:
    """Remove the records this test's replicas left in Redis (its flow's own keys only)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    step = f"{harness.flow.flow_id}_{harness.flow.step_id}".replace(":", "_")
    for key in client.scan_iter(f"eio:delivery:{step}.*"):
        client.delete(key)
