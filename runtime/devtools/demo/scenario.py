"""The demo's script: two whole flows, one called by a webhook, one on a schedule.

* ``records-webhook`` is a request-reply flow: the platform's webhook, then the platform's
  REST step (``httpRequestAxios``, three replicas sharing one platform-held credential)
  fetching the record the request names, then a Node.js step of the repository's own
  (``demo/components/reply-node``) that answers the caller with it. The demo calls it in
  rounds of concurrent requests, each round after the access token has expired, so every
  replica meets the same expired token at the same moment: the credential is refreshed once
  per expiry, not once per replica.
* ``records-poll`` runs every few seconds: ``pollRecords`` pages through the records that
  are new since its cursor (kept in its snapshot between ticks) and our ``httpRequest``
  fetches each one whole.

Every event is printed as one JSON line as it comes back; the run ends by itself with a
summary.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

import requests

from runtime.devtools.localplatform import messaging
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.worker.amqp import AdminClient
from runtime.worker.transport import Properties

SHOWN = ("message", "error", "snapshot", "rebound")


class Tail:
    """Prints every event the flows' steps publish, and counts them by step and event."""

    def __init__(self, steps: dict[str, FlowSpec], out: TextIO) -> None:
        self.out = out
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._follow, args=(label, step, kind), daemon=True)
            for label, step in steps.items()
            for kind in SHOWN
        ]
        for thread in self._threads:
            thread.start()

    def say(self, line: dict[str, Any]) -> None:
        with self._lock:
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.out.flush()

    def _follow(self, label: str, step: FlowSpec, kind: str) -> None:
        def on_message(body: bytes, properties: Properties) -> None:
            event = messaging.read(step, kind, body, properties)
            payload = event["payload"]
            shown = payload.get("body", payload) if isinstance(payload, dict) else payload
            if event["event"] == "error":
                shown = payload["error"]["message"]
            if isinstance(shown, dict) and "responseBody" in shown:
                shown = {"statusCode": shown.get("statusCode"), "body": shown["responseBody"]}
            elif isinstance(shown, dict) and "statusCode" in shown:
                shown = {"statusCode": shown["statusCode"], "body": shown.get("body")}
            with self._lock:
                self.counts[(label, event["event"])] += 1
            self.say({"step": label, "event": event["event"], "payload": shown})

        with AdminClient(step.amqp_url, name="demo-tail") as admin:
            admin.consume(step.output_queue(kind), on_message, stop=self._stop)

    def wait_for(self, wanted: dict[tuple[str, str], int], timeout: float) -> bool:
        def arrived() -> bool:
            with self._lock:
                return all(self.counts[key] >= count for key, count in wanted.items())

        return wait_until(arrived, timeout)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition`` came true within ``timeout`` seconds (asked every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def labelled(webhook: GraphFlow, poll: GraphFlow) -> dict[str, FlowSpec]:
    """Every step but the webhook's, named ``flow/function``."""
    steps: dict[str, FlowSpec] = {}
    for short, flow in (("webhook", webhook), ("poll", poll)):
        for node in flow.graph.nodes:
            if flow.component_folder(node) is not None:
                steps[f"{short}/{node.function}"] = flow.step(node)
    return steps


def drive(
    webhook: GraphFlow,
    poll: GraphFlow,
    hook_url: str,
    out: TextIO,
    *,
    rounds: int = 3,
    per_round: int = 3,
    pause: float = 3.5,
    records: int = 25,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Run the scenario against running flows; the counts of what came back."""
    tail = Tail(labelled(webhook, poll), out)
    sent = answered = 0
    try:
        with ThreadPoolExecutor(per_round) as callers:
            for round_ in range(1, rounds + 1):
                time.sleep(pause)  # longer than an access token lives
                tail.say({"demo": f"round {round_}: {per_round} webhook calls at once"})
                ids = list(range(sent + 1, sent + per_round + 1))
                sent += per_round
                for record_id, answer in zip(ids, callers.map(_call(hook_url), ids), strict=True):
                    tail.say({"demo": "answer", "id": record_id, **answer})
                    body = answer.get("body")
                    record = body.get("record") if isinstance(body, dict) else None
                    if answer["status"] == 200 and isinstance(record, dict):
                        answered += record.get("id") == record_id
        tail.wait_for(
            {("poll/httpRequest", "data"): records, ("poll/pollRecords", "snapshot"): 1,
             ("webhook/httpRequestAxios", "data"): sent, ("webhook/reply", "data"): sent},
            timeout,
        )  # fmt: skip
    finally:
        tail.stop()
    counts = tail.counts
    return {
        "sent": sent,
        "requests answered": answered,
        "records polled": counts[("poll/pollRecords", "data")],
        "records fetched": counts[("poll/httpRequest", "data")],
        "snapshots": counts[("poll/pollRecords", "snapshot")],
        "errors": sum(n for (_, event), n in counts.items() if event == "error"),
        "per step": {label: n for (label, event), n in sorted(counts.items()) if event == "data"},
        "records expected": records,
    }


def _call(hook_url: str) -> Callable[[int], dict[str, Any]]:
    def call(record_id: int) -> dict[str, Any]:
        try:
            answer = requests.post(hook_url, json={"id": record_id}, timeout=60)
        except requests.RequestException as exc:
            return {"status": None, "error": str(exc)}
        try:
            body: Any = answer.json()
        except ValueError:
            body = answer.text
        return {"status": answer.status_code, "body": body}

    return call


def complete(counts: dict[str, Any]) -> bool:
    return bool(
        counts["errors"] == 0
        and counts["requests answered"] == counts["sent"]
        and counts["records fetched"] >= counts["records expected"]
        and counts["snapshots"] >= 1
    )
