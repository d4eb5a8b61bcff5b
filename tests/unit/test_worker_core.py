"""The worker's core rules, in milliseconds, with the broker in memory (tests/fakes.py).

Settlement, redelivery, bounded requeues, the last resort, event routing and key saving;
the same rules run against a real RabbitMQ in tests/integration.
"""

from __future__ import annotations

import json

import pytest
import structlog

from runtime.auth.credentials import KeysUpdate, keys_version
from runtime.auth.errors import KeysConflict
from runtime.platform.api import PlatformApiError
from runtime.step.component import load_component
from runtime.step.loader import load_step
from runtime.worker.assembly import assemble_worker
from runtime.worker.crypto import MessageCipher
from runtime.worker.keys import KeySaver, KeysNotSaved
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.settlement import MAX_REQUEUES, Admission, Ledger, Run
from runtime.worker.step_state import StepState
from runtime.worker.wire import decode_value, encode
from tests.fakes import FakePlatformApi, MemoryBroker, transport_failure
from tests.helpers import FIXTURES

CIPHER = MessageCipher("worker-core-password", "0123456789abcdef")
ENV = {
    "ELASTICIO_FLOW_ID": "flow",
    "ELASTICIO_EXEC_ID": "exec",
    "ELASTICIO_STEP_ID": "step_2",
    "ELASTICIO_CONTAINER_ID": "container",
    "ELASTICIO_WORKSPACE_ID": "workspace",
    "ELASTICIO_USER_ID": "user",
    "ELASTICIO_COMP_ID": "component",
    "ELASTICIO_API_URI": "http://127.0.0.1:9",
    "ELASTICIO_API_USERNAME": "task-user",
    "ELASTICIO_API_KEY": "task-api-key",
    "ELASTICIO_AMQP_URI": "amqp://guest:guest@127.0.0.1:9/",
    "ELASTICIO_LISTEN_MESSAGES_ON": "queue",
    "ELASTICIO_PUBLISH_MESSAGES_TO": "exchange",
    "ELASTICIO_DATA_ROUTING_KEY": "data",
    "ELASTICIO_ERROR_ROUTING_KEY": "error",
    "ELASTICIO_REBOUND_ROUTING_KEY": "rebound",
    "ELASTICIO_SNAPSHOT_ROUTING_KEY": "snapshot",
    "ELASTICIO_MESSAGE_CRYPTO_PASSWORD": "worker-core-password",
    "ELASTICIO_MESSAGE_CRYPTO_IV": "0123456789abcdef",
    "ELASTICIO_DATA_RATE_LIMIT": "100000",
    "ELASTICIO_ERROR_RATE_LIMIT": "100000",
    "ELASTICIO_SNAPSHOT_RATE_LIMIT": "100000",
}
COMPONENT = load_component(FIXTURES / "flowsteps")


@pytest.fixture
def broker():
    return MemoryBroker()


def worker_for(broker, function, *, prefetch=1, config=None, api=None, **env):
    broker.prefetch = prefetch
    settings = Settings.from_env(
        {**ENV, "ELASTICIO_FUNCTION": function, "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": str(prefetch),
         **{f"ELASTICIO_{k.upper()}": v for k, v in env.items()}}
    )  # fmt: skip
    worker = assemble_worker(
        settings=settings,
        component=COMPONENT,
        step=load_step(COMPONENT, function),
        broker=broker,
        api=api or FakePlatformApi(),
        state=StepState({"config": config or {}}),
        cipher=CIPHER,
    )
    broker.on_delivery = worker.on_delivery
    return worker


def message(body, message_id="m-1"):
    return encode({"body": body, "headers": {}}, CIPHER, 1), {
        "messageId": message_id,
        "protocolVersion": 1,
    }


def bodies(broker, routing_key="data"):
    return [decode_value(p.body, CIPHER, 1)["body"] for p in broker.routed(routing_key)]


def settled(broker, worker, deliveries, timeout=10.0):
    broker.drain()  # the deliveries were received
    assert worker.wait_idle(timeout)
    broker.drain()  # their settles were performed
    return [broker.verdict(d) for d in deliveries]


@pytest.mark.parametrize("prefetch", [1, 10])
def test_different_messages_sharing_a_message_id_all_run_and_are_all_acked(broker, gated, prefetch):
    worker = worker_for(broker, "gated", prefetch=prefetch)
    deliveries = [broker.deliver(*message({"n": n}, message_id="one-id")) for n in range(5)]
    gated.wait_held(min(prefetch, 5))  # as many at once as the prefetch lets in
    broker.drain()
    assert broker.waiting == max(0, 5 - prefetch)
    gated.gate.set()
    assert settled(broker, worker, deliveries) == ["ack"] * 5
    assert sorted(b["n"] for b in bodies(broker)) == [0, 1, 2, 3, 4]
    assert gated.most_held == min(prefetch, 5)


def test_a_true_redelivery_of_a_running_message_runs_once_and_its_live_copy_is_acked(broker, gated):
    worker = worker_for(broker, "gated")
    body, headers = message({"n": 1})
    first = broker.deliver(body, headers)
    gated.wait_held(1)  # the first copy is running
    broker.reconnect()  # the connection dropped: the broker hands the message over again
    second = broker.deliver(body, headers, redelivered=True)
    broker.drain()  # the second copy arrived while the first still runs
    gated.gate.set()
    assert settled(broker, worker, [first, second]) == [None, "ack"]
    assert len(bodies(broker)) == 1
    assert gated.runs == 1


def test_a_message_finished_while_disconnected_is_acked_on_redelivery_without_running(
    broker, gated
):
    worker = worker_for(broker, "gated")
    body, headers = message({"n": 1})
    first = broker.deliver(body, headers)
    gated.wait_held(1)
    broker.reconnect()  # its connection is gone before it finishes
    gated.gate.set()
    assert settled(broker, worker, [first]) == [None]
    again = broker.deliver(body, headers, redelivered=True)
    broker.wait_for(lambda: broker.verdict(again) is not None)
    assert broker.verdict(again) == "ack"
    assert len(bodies(broker)) == 1  # it provably ran before: not run twice
    assert gated.runs == 1


def test_a_message_whose_ack_died_with_its_node_is_acked_on_redelivery_without_running(
    broker, gated
):
    worker = worker_for(broker, "gated")
    body, headers = message({"n": 1})
    first = broker.deliver(body, headers)
    gated.gate.set()
    assert settled(broker, worker, [first]) == ["ack"]  # sent on a live connection...
    broker.reconnect()  # ...whose node died before the queue's leader had it
    again = broker.deliver(body, headers, redelivered=True)
    broker.wait_for(lambda: broker.verdict(again) is not None)
    assert broker.verdict(again) == "ack"
    assert len(bodies(broker)) == 1
    assert gated.runs == 1
    fresh = broker.deliver(body, headers)  # the same bytes published again: a new message
    assert settled(broker, worker, [fresh]) == ["ack"]
    assert gated.runs == 2


def test_a_redelivered_message_with_other_bytes_is_another_message(broker, gated):
    worker = worker_for(broker, "gated", prefetch=2)
    first = broker.deliver(*message({"n": 1}))
    gated.wait_held(1)
    other = broker.deliver(*message({"n": 2}), redelivered=True)
    gated.wait_held(2)  # not parked on the first: it runs too
    gated.gate.set()
    assert settled(broker, worker, [first, other]) == ["ack", "ack"]
    assert sorted(b["n"] for b in bodies(broker)) == [1, 2]


def test_a_broker_delivery_count_bounds_requeues_too(broker):
    broker.refuse = lambda key, body: transport_failure() if key == "data" else None
    worker = worker_for(broker, "work")
    body, headers = message({"n": 1})
    delivery = broker.deliver(body, {**headers, "x-delivery-count": MAX_REQUEUES})
    assert settled(broker, worker, [delivery]) == ["reject"]


def test_an_unexpected_failure_while_reading_is_rejected_and_the_next_message_runs(
    broker, monkeypatch
):
    calls = []

    def decode(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RecursionError("maximum recursion depth exceeded")
        from runtime.worker.wire import decode as real

        return real(*args)

    monkeypatch.setattr("runtime.worker.preparation.decode", decode)
    worker = worker_for(broker, "work")
    first = broker.deliver(*message({"n": 1}, "m-1"))
    second = broker.deliver(*message({"n": 2}, "m-2"))
    assert settled(broker, worker, [first, second]) == ["reject", "ack"]
    assert bodies(broker) == [{"n": 2}]


def test_a_message_without_message_id_is_rejected_at_once(broker):
    worker = worker_for(broker, "work")
    body, _ = message({"n": 1})
    delivery = broker.deliver(body, {"protocolVersion": 1})
    broker.wait_for(lambda: broker.verdict(delivery) is not None)
    assert broker.verdict(delivery) == "reject"
    assert worker.wait_idle(1)


def test_each_event_goes_to_its_routing_key(broker):
    worker = worker_for(broker, "everything")
    delivery = broker.deliver(*message({"n": 0}))
    assert settled(broker, worker, [delivery]) == ["ack"]
    assert bodies(broker) == [{"n": 1}, {"n": 2}]
    data = broker.routed("data")
    assert data[1].properties.headers["messageId"] == "fixed-id"
    assert data[0].properties.headers["parentMessageId"] == "m-1"
    snapshots = [json.loads(p.body) for p in broker.routed("snapshot")]
    assert snapshots == [{"seen": 1}, {"more": True}]


def test_step_keys_are_saved_to_the_account_then_used_by_the_next_message(broker):
    api = FakePlatformApi()
    worker = worker_for(
        broker, "keys", config={"apiKey": "first-key-0000", "_account": "acc-1"}, api=api
    )
    deliveries = [broker.deliver(*message({}, f"m-{n}")) for n in range(2)]
    assert settled(broker, worker, deliveries) == ["ack", "ack"]
    assert [account for account, _keys, _replaces in api.saved] == ["acc-1", "acc-1"]
    assert bodies(broker) == [
        {"apiKeyAtStart": "first-key-0000"},
        {"apiKeyAtStart": "rotated-key-0001"},
    ]


def test_step_keys_with_nowhere_to_go_fail_the_message(broker):
    worker = worker_for(broker, "keys", config={"apiKey": "first-key-0000"})
    delivery = broker.deliver(*message({}))
    assert settled(broker, worker, [delivery]) == ["reject"]
    envelope = json.loads(broker.routed("error")[0].body)
    error = decode_value(envelope["error"].encode(), CIPHER, 1)
    assert "updateKeys has nowhere to go" in error["message"]


class _ComparingApi(FakePlatformApi):
    """Holds keys and compares like the local platform: 412 when they are not the replaced."""

    def update_account(self, account_id, keys, *, replaces=None):
        held = keys_version(self.config)
        if replaces is not None and held not in (replaces, keys_version(keys)):
            raise PlatformApiError("precondition failed", 412)
        super().update_account(account_id, keys, replaces=replaces)


def _saver(api):
    settings = Settings.from_env({**ENV, "ELASTICIO_FUNCTION": "keys"})
    state = StepState({"config": {"_account": "acc"}})
    return KeySaver(settings, state, api, Publisher(MemoryBroker(), settings), CIPHER)


def test_saving_keys_compares_with_what_the_account_holds():
    old = {"refreshToken": "rt-old", "accessToken": "at-old"}
    api = _ComparingApi({**old})
    saver = _saver(api)
    mine = KeysUpdate(
        {"refreshToken": "rt-mine", "accessToken": "at-m"}, replaces=keys_version(old)
    )
    saver.save(mine, {"_account": "acc"}, {})
    assert api.config["refreshToken"] == "rt-mine"
    late = KeysUpdate(
        {"refreshToken": "rt-late", "accessToken": "at-l"}, replaces=keys_version(old)
    )
    with pytest.raises(KeysConflict, match="holds keys another process saved"):
        saver.save(late, {"_account": "acc"}, {})
    assert api.config["refreshToken"] == "rt-mine"  # not overwritten
    saver.save(mine, {"_account": "acc"}, {})  # the same save again is fine


def test_a_platform_computing_its_own_versions_still_gets_the_keys():
    class Strict(FakePlatformApi):
        def update_account(self, account_id, keys, *, replaces=None):
            if replaces is not None:
                raise PlatformApiError("precondition failed", 412)
            super().update_account(account_id, keys)

    old = {"refreshToken": "rt-old"}
    api = Strict({**old})
    _saver(api).save(KeysUpdate({"refreshToken": "rt-new"}, replaces=keys_version(old)), {}, {})
    assert api.config["refreshToken"] == "rt-new"


def test_keys_not_saved_anywhere_are_an_error():
    api = FakePlatformApi()
    api.refuse_saves = True
    with pytest.raises(KeysNotSaved, match="accounts service unavailable"):
        _saver(api).save({"refreshToken": "rt-x"}, {"_account": "acc"}, {})


def test_a_second_settle_of_one_message_is_refused_and_said_not_performed():
    """One owner settles a delivery once: a second verdict (a bug in whoever gave it) must
    neither reach the broker, which would close the channel, nor count the message twice."""
    broker = MemoryBroker()
    ledger = Ledger(broker)
    admitted: list[Admission] = []
    broker.on_delivery = lambda delivery: admitted.append(ledger.receive(delivery))
    delivery = broker.deliver(*message({"n": 1}))
    broker.drain()
    (run,) = admitted
    assert isinstance(run, Run)
    with structlog.testing.capture_logs() as logs:
        ledger.settle(run.ticket, "ack")
        ledger.settle(run.ticket, "reject")
        broker.drain()
    assert broker.verdict(delivery) == "ack"
    assert ledger.in_flight == 0 and ledger.wait_idle(0)
    assert [e["verdict"] for e in logs if e["event"] == "settled_twice"] == ["reject"]
