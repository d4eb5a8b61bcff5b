"""Kill -9 in the middle of a stream: every input has its output, duplicates only in flight."""

from __future__ import annotations

import collections
import signal
import time

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.slow

TOTAL = 2000
PREFETCH = 10


def test_sigkill_mid_stream_loses_nothing(step):
    harness = step("work", prefetch=PREFETCH)
    for n in range(TOTAL):
        harness.send({"n": n})
    seen: collections.Counter[int] = collections.Counter()

    def drain() -> None:
        while (got := harness.admin.get(harness.flow.output_queue("message"))) is not None:
            body, properties = got
            from runtime.devtools.localplatform import messaging

            seen[
                messaging.read(harness.flow, "message", body, properties)["payload"]["body"]["n"]
            ] += 1

    first = harness.start_worker()
    output = harness.flow.output_queue("message")
    wait_for(
        lambda: harness.admin.count(output) >= TOTAL // 3,
        timeout=60,
        what="a third of the outputs from the first worker",
    )
    first.signal(signal.SIGKILL)
    first.wait()
    drain()
    killed_after = sum(seen.values())
    assert 0 < killed_after < TOTAL

    second = harness.start_worker()
    deadline = time.monotonic() + 120
    while len(seen) < TOTAL and time.monotonic() < deadline:
        drain()
        time.sleep(0.05)
    second.signal()
    assert second.wait() == 0  # stopped cleanly: all it did is published
    drain()

    missing = set(range(TOTAL)) - set(seen)
    duplicates = {n: c for n, c in seen.items() if c > 1}
    assert missing == set()
    assert len(duplicates) <= PREFETCH, duplicates
    assert all(count == 2 for count in duplicates.values())
    assert harness.queued() == 0
    assert harness.empty("error")
