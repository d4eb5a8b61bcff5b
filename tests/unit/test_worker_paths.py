"""The worker's core rules, run for a sync step (runner threads) and for an async step (the
event loop): one body of tests, the path picked by the step, the broker in memory. The
rules that need a step of one kind (a gate, a redelivery mid-run) are in test_worker_core."""

from __future__ import annotations

import gc
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
from tests.local_http import Handler, serving
from tests.unit.test_worker_core import CIPHER, COMPONENT, ENV, bodies, message, settled

STEPS = {"sync": {"work": "work", "fail": "fail", "api": "syncApi"},
         "async": {"work": "asyncWork", "fail": "asyncFail", "api": "asyncApi"}}  # fmt: skip


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
    def make(role: str, config: dict | None = None):
        function = STEPS[kind][role]
        settings = Settings.from_env({**ENV, "ELASTICIO_FUNCTION": function})
        step = load_step(COMPONENT, function)
        worker = assemble_worker(
            settings=settings,
            component=COMPONENT,
            step=step,
            broker=broker,
            api=FakePlatformApi(),
            state=StepState({"config": config or {}}),
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


class Records(Handler):
    def answer(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_finished_message_leaves_nothing_for_the_garbage_collector(broker, worker_of):
    # Each message's objects (its run, ctx, session, events) must be freed the moment it
    # ends. Objects caught in a reference cycle wait for the collector's full passes
    # instead, and those grew with the messages in flight: a fifth of a busy worker's CPU.
    with serving(Records) as api:
        worker = worker_of("api", {"type": "oauth2", "tokenUrl": f"{api.url}/token",
                                   "clientId": "c", "clientSecret": "s", "baseUrl": api.url,
                                   "oauth": {"access_token": "t-1", "refresh_token": "r-1"},
                                   "url": f"{api.url}/records/1"})  # fmt: skip
        warm = [broker.deliver(*message({"id": 0}, "warm-up"))]
        assert settled(broker, worker, warm) == ["ack"]
        gc.collect()
        gc.disable()
        try:
            runs = [broker.deliver(*message({"id": n}, f"m-{n}")) for n in range(1, 21)]
            assert settled(broker, worker, runs) == ["ack"] * 20
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = [type(o).__qualname__ for o in gc.garbage
                    if type(o).__module__.startswith(("runtime.", "tests.fixtures"))]  # fmt: skip
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert len(bodies(broker)) == 21
    assert ours == []
