from __future__ import annotations

import threading
import time

import pytest
import structlog

from runtime.errors import InvalidInput, StepCancelled
from runtime.step.events import Event, Message
from runtime.step.executor import execute
from runtime.step.run_state import StepCall
from runtime.step.runners import RUNNERS, RunnerPool
from runtime.testing import run_step, run_step_outcome
from tests.helpers import finishes


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def run(process, msg=None, cfg=None, snapshot=None, **kwargs):
    events: list[Event] = []
    runners = kwargs.pop("runners", RUNNERS)
    timeout = kwargs.pop("timeout", None)
    call = StepCall(process, Message(msg or {"body": {}}), cfg or {}, snapshot or {}, **kwargs)
    outcome = execute(call, events.append, runners=runners, timeout=timeout)
    return events, outcome


def test_a_returned_value_is_one_data_event_then_end(sample_component):
    events = run_step("echo", msg={"body": {"text": "hi"}}, component=sample_component)
    assert events == [
        Event("data", {"body": {"text": "hi"}, "headers": {"seen": True}}),
        Event("end", None),
    ]


def test_a_value_without_body_becomes_the_body():
    events, _ = run(lambda ctx, msg, cfg, snap: [1, 2])
    assert events[0] == Event("data", {"body": [1, 2], "headers": {}})


def test_returning_none_emits_only_end():
    events, outcome = run(lambda ctx, msg, cfg, snap: None)
    assert kinds(events) == ["end"]
    assert not outcome.failed


def test_each_generator_yield_is_a_data_event(sample_component):
    events = run_step("countTo", cfg={"n": 4}, snapshot={"last": 1}, component=sample_component)
    assert kinds(events) == ["data", "data", "data", "snapshot", "end"]
    assert [e.payload["body"]["i"] for e in events if e.kind == "data"] == [2, 3, 4]
    assert events[3].payload == {"last": 4}


def test_generator_items_are_handled_as_they_come_not_collected_first():
    first_handled = threading.Event()

    def process(ctx, msg, cfg, snapshot):
        yield {"n": 1}
        # Only reachable if the first item was handed over before the generator finished.
        assert first_handled.wait(5), "first item was not delivered while the step ran"
        yield {"n": 2}

    def handle(event: Event) -> None:
        handled.append(event)
        if event.kind == "data":
            first_handled.set()

    handled: list[Event] = []
    outcome = execute(StepCall(process, Message(body={}), {}, {}), handle, timeout=10)
    assert kinds(handled) == ["data", "data", "end"]
    assert outcome.errors == 0


def test_emit_waits_until_the_event_is_handled():
    order: list[str] = []

    def process(ctx, msg, cfg, snapshot):
        ctx.emit("data", {"n": 1})
        order.append("step continued")

    def slow_handle(event: Event) -> None:
        if event.kind == "data":
            time.sleep(0.2)
            order.append("handled")

    execute(StepCall(process, Message(body={}), {}, {}), slow_handle, timeout=5)
    assert order == ["handled", "step continued"]


def test_multiple_emits_keep_their_order_and_shapes(sample_component):
    events = run_step("emitMany", component=sample_component)
    assert kinds(events) == [
        "data",
        "data",
        "updateSnapshot",
        "httpReply",
        "rebound",
        "updateKeys",
        "end",
    ]
    assert events[1].payload == {"body": {"n": 2}, "headers": {}}
    assert events[3].payload == {"statusCode": 201, "body": "ok", "headers": {}}
    assert events[4].payload["message"] == "try later"


def test_an_exception_is_one_error_event_with_name_message_and_stack(sample_component):
    events, outcome = run_step_outcome("fail", component=sample_component)
    assert kinds(events) == ["data", "error", "end"]
    error = events[1].payload
    assert error["name"] == "QuotaExceeded"
    assert error["message"] == "the API said no: quota used up"
    assert "fail.py" in error["stack"]
    assert "runtime/step/executor.py" not in error["stack"]
    assert outcome.failed


def test_a_step_that_hangs_is_stopped_with_an_error_that_says_so(sample_component):
    ended = finishes(
        lambda: run_step_outcome(
            "sleepy", cfg={"seconds": 3600}, timeout=0.5, component=sample_component
        ),
        within=30,  # not the step's hour
    )
    events, outcome = ended.value
    assert kinds(events) == ["error", "end"]
    assert events[0].payload["name"] == "StepTimedOut"
    assert "ran longer than 0.5 s and was stopped" in events[0].payload["message"]
    assert outcome.timed_out and outcome.failed


def test_a_busy_loop_is_interrupted_and_its_thread_retired(sample_component):
    pool = RunnerPool("test")

    def spin(ctx, msg, cfg, snapshot):
        while True:
            try:
                pass
            except Exception:
                pass

    events, outcome = run(spin, timeout=0.3, runners=pool)
    assert kinds(events) == ["error", "end"]
    assert outcome.timed_out
    deadline = time.monotonic() + 5
    while pool.retired == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.retired == 1


def test_events_emitted_after_the_time_limit_are_dropped():
    release = threading.Event()
    finished = threading.Event()
    late: list[BaseException] = []

    def process(ctx, msg, cfg, snapshot):
        try:
            release.wait(5)
            try:
                ctx.emit("data", {"late": True})
            except BaseException as exc:
                late.append(exc)
                raise
        finally:
            finished.set()

    events, outcome = run(process, timeout=0.2)
    assert outcome.timed_out
    release.set()
    assert finished.wait(5), "the stopped step never got to its late emit"
    # Its emit raised StepCancelled, or the stop reached it first; either way nothing went out.
    assert all(isinstance(exc, StepCancelled) for exc in late)
    assert kinds(events) == ["error", "end"]


def test_only_the_first_end_counts(sample_component):
    events = run_step("endTwice", component=sample_component)
    assert kinds(events) == ["data", "end", "data"]


def test_errors_after_end_do_not_change_the_verdict_but_are_still_emitted(sample_component):
    events, outcome = run_step_outcome("errorThenEnd", component=sample_component)
    assert kinds(events) == ["error", "end", "error"]
    assert outcome.errors == 2
    assert outcome.errors_before_end == 1


def test_an_unserialisable_payload_becomes_one_error_and_the_step_goes_on(sample_component):
    events, outcome = run_step_outcome("unserialisable", component=sample_component)
    assert kinds(events) == ["error", "data", "end"]
    assert "not JSON serializable" in events[0].payload["message"]
    assert outcome.failed


def test_a_delivery_failure_raised_in_the_step_is_reported_once():
    def process(ctx, msg, cfg, snapshot):
        ctx.emit("httpReply", {"statusCode": 200, "body": "x"})

    def handle(event: Event) -> None:
        if event.kind == "httpReply":
            raise RuntimeError("no reply_to header on the incoming message")
        events.append(event)

    events: list[Event] = []
    outcome = execute(StepCall(process, Message(body={}), {}, {}), handle, timeout=5)
    assert kinds(events) == ["error", "end"]
    assert "no reply_to header" in events[0].payload["message"]
    assert outcome.errors == 1


def test_an_unknown_event_name_is_an_error_naming_the_valid_ones():
    events, _ = run(lambda ctx, msg, cfg, snap: ctx.emit("dta", {}))
    assert kinds(events) == ["error", "end"]
    assert "unknown event 'dta'" in events[0].payload["message"]
    assert "updateSnapshot" in events[0].payload["message"]


def test_step_errors_raised_on_purpose_carry_their_message():
    def process(ctx, msg, cfg, snapshot):
        raise InvalidInput("field 'email' is required")

    events, _ = run(process)
    assert events[0].payload["name"] == "InvalidInput"
    assert events[0].payload["message"] == "field 'email' is required"


def test_async_steps_are_awaited(sample_component):
    events = run_step("asyncEcho", msg={"body": {"a": 1}}, component=sample_component)
    assert events[0].payload["body"] == {"a": 1}


def test_async_generators_stream_data():
    async def process(ctx, msg, cfg, snapshot):
        for i in range(3):
            yield {"i": i}

    events, _ = run(process)
    assert [e.payload["body"]["i"] for e in events if e.kind == "data"] == [0, 1, 2]


def test_ctx_log_is_bound_to_the_message_ids():
    with structlog.testing.capture_logs() as logs:
        fields = {"messageId": "m-1", "threadId": "t-1"}
        run(lambda ctx, msg, cfg, snap: ctx.log.info("working", n=1), log_fields=fields)
    [entry] = [e for e in logs if e["event"] == "working"]
    assert entry["messageId"] == "m-1"
    assert entry["threadId"] == "t-1"


def test_the_step_gets_copies_of_cfg_and_snapshot():
    cfg = {"a": 1}
    snapshot = {"b": 2}

    def process(ctx, msg, c, s):
        c["a"] = 99
        s["b"] = 99

    execute(StepCall(process, Message(body={}), cfg, snapshot), lambda e: None, timeout=5)
    assert cfg == {"a": 1}
    assert snapshot == {"b": 2}


def test_many_runs_reuse_runner_threads():
    pool = RunnerPool("reuse")
    before = threading.active_count()
    for _ in range(50):
        run(lambda ctx, msg, cfg, snap: {"ok": True}, runners=pool, timeout=5)
    assert threading.active_count() - before <= 2


@pytest.mark.parametrize("kind", ["snapshot", "updateSnapshot", "updateKeys", "httpReply"])
def test_object_events_refuse_non_objects(kind):
    events, _ = run(lambda ctx, msg, cfg, snap: ctx.emit(kind, [1, 2]))
    assert kinds(events) == ["error", "end"]
    assert "must be a JSON object" in events[0].payload["message"]
