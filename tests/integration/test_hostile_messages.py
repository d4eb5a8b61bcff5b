"""Hundreds of hostile messages through a real worker: none of them stalls the queue.

The messages come from the Hypothesis strategies in tests/hostile.py (the same ones the
decode path is fuzzed with), generated with a fixed seed, and are interleaved with good
messages. Afterwards the step's queue is empty, nothing is left unacknowledged, every good
message gave its data, and the worker is alive and still taking messages.
"""

from __future__ import annotations

import time

from runtime.devtools.localplatform import messaging
from runtime.devtools.localplatform.messaging import cipher_for
from tests.hostile import generate, hostile_messages

HOSTILE = 300
GOOD_EVERY = 10


def test_hostile_messages_never_stall_a_worker(step):
    harness = step("work")
    worker = harness.start_worker(ELASTICIO_MESSAGE_TIMEOUT="10")
    hostile = generate(hostile_messages(cipher_for(harness.flow)), HOSTILE)
    kinds = {message.kind.split(",")[0] for message in hostile}
    assert {"random bytes", "deep nesting", "huge string", "not utf-8"} <= kinds
    good = []
    for number, message in enumerate(hostile):
        harness.publish_raw(message.body, message.headers)
        if number % GOOD_EVERY == 0:
            good.append({"good": number})
            harness.send(good[-1])
    assert _bodies_out(harness, good, timeout=180) == good
    assert worker.process.poll() is None, "the worker is alive"
    harness.send({"good": "after"})
    assert _bodies_out(harness, [{"good": "after"}], timeout=30) == [{"good": "after"}]
    assert harness.queued() == 0
    worker.signal()
    assert worker.wait(60) == 0
    assert harness.queued() == 0, "a delivery was left unacknowledged and came back"
    logs = worker.logs
    assert not [e for e in logs if e.get("msg") == "delivery_failed"], "the last resort ran"
    rejected = [e for e in logs if e.get("msg") == "message_rejected"]
    assert len(rejected) >= HOSTILE // 3
    for entry in rejected:
        assert entry.get("reason")


def _bodies_out(harness, wanted, timeout):
    """The good bodies among the step's data messages, in order, once all have come out."""
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < len(wanted) and time.monotonic() < deadline:
        got = harness.admin.get(harness.flow.output_queue("message"))
        if got is None:
            time.sleep(0.05)
            continue
        body = messaging.read(harness.flow, "message", *got)["payload"].get("body")
        if body in wanted:
            found.append(body)
    return found
