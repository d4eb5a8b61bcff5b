"""One body of rules, run for a sync step and for an ``async def`` step: what a returned
value emits, how failures become events, and how a run past its limit ends. Each case
writes its step once as a plain body and runs it both ways, so the two kinds cannot drift."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest

from runtime.step.events import Event, Message
from runtime.step.executor import execute
from runtime.step.run_state import Outcome, StepCall

Body = Callable[[Any], Any]
"""What the step does with its ctx; its return value is the step's."""


def as_sync(body: Body) -> Callable[..., Any]:
    def process(ctx, msg, cfg, snapshot):
        return body(ctx)

    return process


def as_async(body: Body) -> Callable[..., Any]:
    async def process(ctx, msg, cfg, snapshot):
        result = body(ctx)
        if inspect.iscoroutine(result):  # asyncio's would take a generator for one
            return await result
        return result

    return process


@pytest.fixture(params=["sync", "async"])
def kind(request) -> str:
    return request.param


def run(kind: str, body: Body, *, handle=None, timeout: float | None = 5) -> tuple[list, Outcome]:
    events: list[Event] = []
    process = as_sync(body) if kind == "sync" else as_async(body)
    call = StepCall(process, Message(body={}), {}, {})
    outcome = execute(call, handle or events.append, timeout=timeout)
    return events, outcome


def data_bodies(events: list[Event]) -> list[Any]:
    return [e.payload["body"] for e in events if e.kind == "data"]


def test_a_returned_object_is_one_data_event(kind):
    events, outcome = run(kind, lambda ctx: {"body": {"n": 1}})
    assert [e.kind for e in events] == ["data", "end"]
    assert data_bodies(events) == [{"n": 1}]
    assert not outcome.failed


def test_a_returned_iterator_is_one_data_event_per_item(kind):
    events, _ = run(kind, lambda ctx: iter([{"body": {"n": 1}}, None, {"body": {"n": 2}}]))
    assert data_bodies(events) == [{"n": 1}, {"n": 2}]


def test_a_returned_generator_is_one_data_event_per_item(kind):
    def body(ctx):
        return ({"body": {"n": n}} for n in range(3))

    events, _ = run(kind, body)
    assert data_bodies(events) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_returned_list_is_one_value(kind):
    events, _ = run(kind, lambda ctx: [1, 2])
    assert data_bodies(events) == [[1, 2]]


def test_a_returned_coroutine_is_awaited_and_its_value_emitted(kind):
    async def later():
        return {"body": {"late": True}}

    events, _ = run(kind, lambda ctx: later())
    assert data_bodies(events) == [{"late": True}]


def test_none_emits_only_end(kind):
    events, _ = run(kind, lambda ctx: None)
    assert [e.kind for e in events] == ["end"]


def test_an_exception_is_one_error_then_end_and_fails_the_message(kind):
    def body(ctx):
        raise ValueError("the order has no lines")

    events, outcome = run(kind, body)
    assert [e.kind for e in events] == ["error", "end"]
    assert events[0].payload["message"] == "the order has no lines"
    assert outcome.failed


def test_an_event_that_cannot_be_delivered_is_reported_once(kind):
    seen: list[Event] = []

    def handle(event: Event) -> None:
        if event.kind == "httpReply":
            raise RuntimeError("no reply_to header on the incoming message")
        seen.append(event)

    def body(ctx):
        ctx.emit("httpReply", {"statusCode": 200, "body": "x"})

    _, outcome = run(kind, body, handle=handle)
    assert [e.kind for e in seen] == ["error", "end"]
    assert "no reply_to header" in seen[0].payload["message"]
    assert outcome.errors == 1


def test_only_the_first_end_counts(kind):
    def body(ctx):
        ctx.emit("end")
        ctx.emit("end")

    events, outcome = run(kind, body)
    assert [e.kind for e in events] == ["end"]
    assert outcome.events == 1


def test_a_run_past_its_limit_ends_with_an_error_that_says_so(kind):
    def body(ctx):
        if kind == "async":
            return asyncio.sleep(30)
        time.sleep(30)
        return None

    events, outcome = run(kind, body, timeout=0.3)
    assert [e.kind for e in events] == ["error", "end"]
    assert "ran longer than 0.3 s" in events[0].payload["message"]
    assert outcome.timed_out and outcome.failed
