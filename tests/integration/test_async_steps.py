"""``async def`` steps through a real worker and RabbitMQ: one event loop, every event.

The steps are in tests/fixtures/flowsteps/steps/async_*.py. Besides the events themselves:
hundreds of messages in flight cost tasks, not threads; a step past its time limit is
cancelled with one error; a step that blocks the event loop (longer than the broker's
heartbeat timeout) costs no connection and loses or repeats no message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from tests.helpers import demo_oauth, wait_for


def threads_of(worker) -> int:
    return len(list(Path(f"/proc/{worker.process.pid}/task").iterdir()))


def test_an_async_step_emits_every_event_and_the_message_is_acked(step, platform_api):
    harness = step("asyncEverything", config={"apiKey": "original-key-0000"})
    harness.start_worker()
    harness.send({})
    first, second = harness.take("message", 2)
    assert first["payload"]["body"] == {"n": 1}
    assert second["payload"]["body"] == {"n": 2}
    assert second["properties"].headers["messageId"] == "fixed-id"
    snapshots = harness.take("snapshot", 2)
    assert [s["payload"] for s in snapshots] == [{"seen": 1}, {"more": True}]
    [keys] = harness.take("keys")
    assert keys["payload"]["keys"]["apiKey"] == "rotated-by-async"
    account = platform_api.state.accounts[harness.flow.account]
    assert account["apiKey"] == "rotated-by-async"
    harness.send({})  # the next message runs with the saved keys
    harness.take("message", 2)
    [again] = harness.take("keys")
    assert again["payload"]["keys"]["seenBefore"] == "rotated-by-async"
    assert harness.empty("error")
    assert harness.queued() == 0


def test_an_async_step_that_raises_is_one_error_and_its_message_rejected(step):
    harness = step("asyncEverything", dead_letters=True)
    harness.start_worker()
    harness.send({"fail": "order 7"})
    [error] = harness.take("error")
    assert error["payload"]["error"]["message"] == "async step failed on order 7"
    assert error["payload"]["errorInput"]["body"] == {"fail": "order 7"}
    wait_for(lambda: harness.dead_lettered() == 1)  # rejected: an error came before end


def test_an_async_step_rebounds(step):
    harness = step("asyncEverything")
    harness.start_worker(ELASTICIO_REBOUND_INITIAL_EXPIRATION="600000")
    harness.send({"rebound": True})
    [rebound] = harness.take("rebound")
    assert rebound["payload"]["body"] == {"rebound": True}
    assert rebound["properties"].headers["reboundReason"] == "come back later"
    assert harness.empty("error")


def test_an_async_generator_yields_each_item_as_data_in_order(step):
    harness = step("asyncMany")
    harness.start_worker()
    harness.send({"count": 40})
    outputs = harness.take("message", 40)
    assert [o["payload"]["body"]["i"] for o in outputs] == list(range(40))


def test_two_hundred_messages_in_flight_are_tasks_not_threads(step):
    harness = step("asyncWork", prefetch=200)
    worker = harness.start_worker()
    baseline = threads_of(worker)
    for n in range(200):
        harness.send({"n": n, "sleep": 3})
    wait_for(lambda: harness.queued() == 0, timeout=30)  # all 200 delivered, all running
    running = threads_of(worker)
    outputs = harness.take("message", 200, timeout=60)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == list(range(200))
    assert running - baseline < 10, f"{running} threads with 200 messages in flight"


def test_an_async_step_past_its_time_limit_is_cancelled_with_one_error(step):
    harness = step("asyncHang", env={"ELASTICIO_MESSAGE_TIMEOUT": "1"})
    harness.start_worker()
    harness.send({"hang": True, "n": 1})
    harness.send({"n": 2})
    [error] = harness.take("error", timeout=15)
    assert error["payload"]["error"]["name"] == "StepTimedOut"
    assert "ran longer than 1 s and was stopped" in error["payload"]["error"]["message"]
    assert error["payload"]["errorInput"]["body"] == {"hang": True, "n": 1}
    [out] = harness.take("message", timeout=15)
    assert out["payload"]["body"] == {"n": 2}
    assert harness.empty("error")


def test_a_step_that_ignores_its_cancellation_can_emit_nothing_more(step):
    harness = step("asyncHang", env={"ELASTICIO_MESSAGE_TIMEOUT": "1"})
    worker = harness.start_worker()
    harness.send({"hang": True, "stubborn": True})
    [error] = harness.take("error", timeout=15)
    assert error["payload"]["error"]["name"] == "StepTimedOut"
    refused = worker.wait_for_log("late_emit_refused")
    assert refused["error"] == "StepCancelled"
    assert harness.empty("message")  # its late data never went out
    assert harness.queued() == 0


def test_a_step_blocking_the_loop_past_the_heartbeat_costs_no_connection_or_message(step, amqp_url):
    # A heartbeat of 2 s: the broker drops a connection silent for about 4 s. The step
    # blocks the event loop, which the connections share, for 6 s: the heartbeat guard's
    # thread keeps them alive (without it, message 0 comes out twice).
    url = amqp_url + ("&" if "?" in amqp_url else "?") + "heartbeat=2"
    harness = step("asyncBlocking", prefetch=10)
    worker = harness.start_worker(ELASTICIO_AMQP_URI=url)
    for n in range(20):
        harness.send({"n": n, "block": 6 if n == 3 else 0})
    outputs = harness.take("message", 20, timeout=60)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == list(range(20))
    blocked = worker.wait_for_log("event_loop_blocked")
    assert blocked["step"] == "asyncBlocking"
    assert blocked["lag"] >= 1
    assert "async_blocking.py" in blocked["where"]
    resumed = worker.wait_for_log("event_loop_resumed")
    assert resumed["blocked"] >= 5
    assert harness.empty("message")  # nothing twice
    assert harness.queued() == 0
    assert "connection_lost" not in worker.text, worker.text
    kept = worker.wait_for_log("heartbeats_sent_while_blocked")
    assert kept["frames"] >= 6  # one every 0.5 s (a quarter of the timeout) for about 5 s
    worker.signal()
    assert worker.wait() == 0


def test_sync_and_async_steps_of_one_component_each_run_their_way(step):
    sync, asynchronous = step("work"), step("asyncWork")
    sync_worker = sync.start_worker()
    async_worker = asynchronous.start_worker()
    # An async step's connections share its event loop; a sync step's keep their thread.
    assert sync_worker.wait_for_log("worker_ready")["amqp_io"] == "own-thread"
    assert async_worker.wait_for_log("worker_ready")["amqp_io"] == "steps-loop"
    sync.send({"n": "sync"})
    asynchronous.send({"n": "async"})
    assert sync.take("message")[0]["payload"]["body"] == {"n": "sync"}
    assert asynchronous.take("message")[0]["payload"]["body"] == {"n": "async"}


@pytest.fixture
def provider():
    api = DemoApi(ProviderSettings(access_lifetime=300, token_delay=0.2)).start()
    yield api
    api.stop()


def test_async_replicas_sharing_a_credential_refresh_once_per_expiry(
    step, provider, platform_api, redis_url
):
    config = {**demo_oauth(provider)}
    harness = step("asyncApi", config=config, prefetch=50, credentialLockUrl=redis_url)
    workers = [harness.start_worker(wait=False) for _ in range(3)]
    for worker in workers:
        worker.wait_for_log("worker_ready", timeout=60)
    for round_ in (1, 2):
        provider.book.expire_all()  # every task of every replica meets the expired token
        for n in range(150):
            harness.send({"id": n % 20 + 1, "n": n})
        outputs = harness.take("message", 150, timeout=60)
        assert sorted(o["payload"]["body"]["n"] for o in outputs) == list(range(150))
        assert provider.stats()["token_calls"] == round_
    stats = provider.stats()
    assert stats["invalid_grants"] == 0
    assert stats["reused_refresh_tokens"] == 0
    stored = platform_api.state.accounts[harness.flow.account]["oauth"]["refresh_token"]
    assert provider.book.refresh_token_alive(stored)
    assert harness.empty("error")
