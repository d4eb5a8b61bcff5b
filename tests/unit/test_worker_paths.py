"""The worker's core rules, run for a sync step (runner threads) and for an async step (the
event loop): one body of tests, the path picked by the step, the broker in memory. The
rules that need a step of one kind (a gate, a redelivery mid-run) are in test_worker_core."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from runtime.step.event_loop import StepLoop
from runtime.step.loader import load_step
from runtime.worker.assembly import assemble_worker
from runtime.worker.settings import Settings
from runtime.worker.settlement import MAX_REQUEUES
from runtime.worker.step_state import StepState
from runtime.worker.wire import decode_value
from tests.fakes import FakePlatformApi, MemoryBroker, transport_failure
from tests.unit.test_worker_core import CIPHER, COMPONENT, ENV, bodies, message, settled

STEPS = {"sync": {"work": "work", "fail": "fail"},
         "async": {"work": "asyncWork", "fail": "asyncFail"}}  # fmt: skip


@pytest.fixture(params=["sync", "async"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def steps_loop() -> Iterator[StepLoop]:
    loop = StepLoop(step="test").start()
    yield loop
    loop.stop()


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def worker_of(kind, broker, steps_loop):
    def make(role: str):
        function = STEPS[kind][role]
        settings = Settings.from_env({**ENV, "ELASTICIO_FUNCTION": function})
        step = load_step(COMPONENT, function)
        worker = assemble_worker(
            settings=settings,
            component=COMPONENT,
            step=step,
            broker=broker,
            api=FakePlatformApi(),
            state=StepState({"config": {}}),
            cipher=CIPHER,
            steps_loop=steps_loop,
        )
        broker.on_delivery = worker.on_delivery
        return worker

    return make


def test_a_message_runs_its_data_goes_out_and_it_is_acked(broker, worker_of):
    worker = worker_of("work")
    deliveries = [broker.deliver(*message({"n": n}, f"m-{n}")) for n in range(3)]
    assert settled(broker, worker, deliveries) == ["ack"] * 3
    assert sorted(b["n"] for b in bodies(broker)) == [0, 1, 2]


def test_an_error_before_end_rejects_with_the_input_in_the_error_event(broker, worker_of):
    worker = worker_of("fail")
    delivery = broker.deliver(*message({"n": 3}))
    assert settled(broker, worker, [delivery]) == ["reject"]
    envelope = json.loads(broker.routed("error")[0].body)
    assert decode_value(envelope["errorInput"].encode(), CIPHER, 1)["body"] == {"n": 3}
    assert "cannot handle" in decode_value(envelope["error"].encode(), CIPHER, 1)["message"]


def test_requeues_of_a_message_whose_events_cannot_be_published_are_bounded(broker, worker_of):
    broker.refuse = lambda key, body: transport_failure() if key == "data" else None
    worker = worker_of("work")
    body, headers = message({"n": 1})
    verdicts = [settled(broker, worker, [broker.deliver(body, headers)])[0]]
    while verdicts[-1] == "requeue" and len(verdicts) < 20:
        again = broker.deliver(body, headers, redelivered=True)
        verdicts.append(settled(broker, worker, [again])[0])
    assert verdicts == ["requeue"] * MAX_REQUEUES + ["reject"]


def test_an_unexpected_failure_before_the_step_is_reported_then_the_next_runs(
    broker, worker_of, monkeypatch
):
    def broken(_message):
        raise RuntimeError("a bug in the runtime")

    monkeypatch.setattr("runtime.worker.preparation.references_objects", broken)
    worker = worker_of("work")
    first = broker.deliver(*message({"n": 1}, "m-1"))
    assert settled(broker, worker, [first]) == ["reject"]
    [error] = broker.routed("error")
    envelope = json.loads(error.body)
    assert "a bug in the runtime" in decode_value(envelope["error"].encode(), CIPHER, 1)["message"]
    assert decode_value(envelope["errorInput"].encode(), CIPHER, 1)["body"] == {"n": 1}
    monkeypatch.undo()
    after = broker.deliver(*message({"n": 2}, "m-2"))
    assert settled(broker, worker, [after]) == ["ack"]


def test_an_unreadable_message_is_rejected_and_the_next_runs(broker, worker_of):
    worker = worker_of("work")
    nested = CIPHER.encrypt(b'{"body": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    first = broker.deliver(nested, {"messageId": "deep", "protocolVersion": 2})
    second = broker.deliver(*message({"n": 2}, "m-2"))
    assert settled(broker, worker, [first, second]) == ["reject", "ack"]
    assert bodies(broker) == [{"n": 2}]
