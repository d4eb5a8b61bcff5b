"""The demo's script: rounds of messages through ``httpRequest``, one ``pollRecords`` run.

The httpRequest step runs as several replicas sharing one credential. Each round waits
longer than the demo provider's access tokens live, then sends one message per replica at
once, so every replica meets the same expired token at the same moment: one of them
refreshes it (under the credential lock), saves the rotated refresh token, and the others
take the new tokens instead of refreshing again. Then one tick starts a pollRecords run
that pages through every record. Each event is printed as one JSON line as it comes back;
the run ends by itself with a summary.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import Any, TextIO

from runtime.devtools.localplatform import messaging
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.worker.amqp import AdminClient
from runtime.worker.transport import Properties

SHOWN = ("message", "error", "snapshot", "rebound")


class Tail:
    """Prints every event the flows publish, and counts them."""

    def __init__(self, flows: dict[str, FlowSpec], out: TextIO) -> None:
        self.out = out
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._follow, args=(label, flow, kind), daemon=True)
            for label, flow in flows.items()
            for kind in SHOWN
        ]
        for thread in self._threads:
            thread.start()

    def say(self, line: dict[str, Any]) -> None:
        with self._lock:
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.out.flush()

    def _follow(self, label: str, flow: FlowSpec, kind: str) -> None:
        def on_message(body: bytes, properties: Properties) -> None:
            event = messaging.read(flow, kind, body, properties)
            payload = event["payload"]
            shown = payload.get("body", payload) if isinstance(payload, dict) else payload
            if event["event"] == "error":
                shown = payload["error"]["message"]
            if event["event"] == "data" and isinstance(shown, dict) and "statusCode" in shown:
                shown = {"statusCode": shown["statusCode"], "body": shown["body"]}
            with self._lock:
                self.counts[(label, event["event"])] += 1
            self.say({"step": label, "event": event["event"], "payload": shown})

        with AdminClient(flow.amqp_url, name="demo-tail") as admin:
            admin.consume(flow.output_queue(kind), on_message, stop=self._stop)

    def wait_for(self, wanted: dict[tuple[str, str], int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(self.counts[key] >= count for key, count in wanted.items()):
                    return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


def drive(
    http: FlowSpec,
    poll: FlowSpec,
    out: TextIO,
    *,
    rounds: int = 3,
    per_round: int = 3,
    pause: float = 3.5,
    records: int = 25,
    timeout: float = 90.0,
) -> dict[str, int]:
    """Run the scenario against running workers; the counts of what came back."""
    tail = Tail({"httpRequest": http, "pollRecords": poll}, out)
    sent = 0
    try:
        with AdminClient(http.amqp_url, name="demo-send") as admin:
            for round_ in range(1, rounds + 1):
                time.sleep(pause)  # longer than an access token lives
                tail.say({"demo": f"round {round_}: {per_round} messages to httpRequest at once"})
                for _ in range(per_round):
                    sent += 1
                    messaging.send(http, admin, {"id": sent})
                tail.wait_for({("httpRequest", "data"): sent}, timeout)
            tail.say({"demo": "starting a pollRecords run"})
            messaging.send(poll, admin, {"tick": True})
        tail.wait_for(
            {("httpRequest", "data"): sent, ("pollRecords", "data"): records,
             ("pollRecords", "snapshot"): 1},
            timeout,
        )  # fmt: skip
    finally:
        tail.stop()
    counts = tail.counts
    return {
        "sent": sent,
        "httpRequest responses": counts[("httpRequest", "data")],
        "records polled": counts[("pollRecords", "data")],
        "snapshots": counts[("pollRecords", "snapshot")],
        "errors": counts[("httpRequest", "error")] + counts[("pollRecords", "error")],
        "records expected": records,
    }


def complete(counts: dict[str, int]) -> bool:
    return (
        counts["errors"] == 0
        and counts["httpRequest responses"] == counts["sent"]
        and counts["records polled"] >= counts["records expected"]
        and counts["snapshots"] >= 1
    )
