"""``python -m runtime demo``: the whole product on one machine, then it stops by itself.

It starts the demo OAuth2 provider and API (tokens live 3 seconds, refresh tokens rotate and
a reused one revokes the grant), signs in to it twice (one grant the platform holds for the
webhook flow, one in the credentials file for the polling flow), and runs the demo's two
whole flows (``demo/flows/records-webhook.json`` and ``records-poll.json``) on the local
platform with every worker they need: three replicas of the platform's REST step, the
Node.js reply step, pollRecords and httpRequest. Then the scenario of
runtime.devtools.demo.scenario. The summary counts the provider's refreshes against the
expiries the workers met: the two must be equal, whatever the number of replicas.

With ``--external``, the provider, platform and workers run elsewhere (the docker-compose
services) and only the scenario runs, calling the webhook at ``--platform``; ``--provider``
and ``--credentials`` let it report the same counts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import requests

from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.scenario import complete, drive, wait_until
from runtime.devtools.demo.signin import sign_in
from runtime.devtools.demo.tokens import ProviderSettings
from runtime.devtools.localplatform import topology
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.devtools.localplatform.graph_files import load_graph
from runtime.devtools.localplatform.running import FlowRunner
from runtime.devtools.localplatform.webhooks import reply_queue
from runtime.worker.amqp import AdminClient, broker_reachable

ACCESS_LIFETIME = 3.0
FLOW_FILES = ("records-webhook.json", "records-poll.json")
GRANTS = ("demo-hook", "demo")
"""The credentials-file entries: the webhook flow's platform-held secret, the polling flow's
credential. Two grants, so that the two flows never spend one refresh token between them."""
NO_BROKER = """\
No RabbitMQ answers at {url}.
Start one, then run this again:
  - on this machine:   rabbitmq-server -detached
  - with Docker:       docker compose up rabbitmq   (or the whole demo: docker compose up)
  - elsewhere:         RABBITMQ_URL=amqp://user:password@host:5672/ scripts/demo
"""


def load_demo_flows(
    folder: Path, amqp_url: str, *, lock_url: str | None = None, run: str = ""
) -> tuple[GraphFlow, GraphFlow]:
    """The two flows (their files name ``${DEMO_API_URL}``, set before this). ``run``
    suffixes their ids: a demo on a shared broker uses queues of its own."""

    def load(name: str) -> GraphFlow:
        flow = load_graph(folder / name)
        local: dict[str, Any] = {"amqp_url": amqp_url}
        if lock_url is not None:
            local["credential_lock_url"] = lock_url
        return flow.model_copy(
            update={"id": flow.id + run, "local": flow.local.model_copy(update=local)}
        )

    return load(FLOW_FILES[0]), load(FLOW_FILES[1])


_FIELDS = ("msg", "fingerprint", "previous", "rotated", "error", "code")


class WorkerLines:
    """Where the supervised workers' lines go: those about tokens are shown, the rest kept
    quiet; starts are counted."""

    SHOWN = frozenset({"token_refreshed", "credential_reloaded", "startup_failed",
                       "broker_lost", "keys_conflict", "worker_exited"})  # fmt: skip

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.ready = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        label, _, rest = text.partition("] ")
        if "worker_ready" in rest or "Fully initialized" in rest:
            with self._lock:
                self.ready += 1
        try:
            entry = json.loads(rest)
        except ValueError:
            return len(text)
        if isinstance(entry, dict) and (
            entry.get("msg") in self.SHOWN or entry.get("level") in ("error", 50)
        ):
            fields = {k: v for k, v in entry.items() if k in _FIELDS}
            self.out.write(json.dumps({"worker": label.lstrip("["), **fields}) + "\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def summary(
    counts: dict[str, Any], stats: dict[str, Any] | None, grants_alive: bool | None
) -> dict[str, Any]:
    """The last line: what came back, and whether replicas multiplied the refreshes."""
    line: dict[str, Any] = {"demo": "done" if complete(counts) else "incomplete"}
    line.update({k: v for k, v in counts.items() if k not in ("records expected",)})
    line["requests"] = line.pop("sent")
    if stats is not None:
        line["expiries met"] = stats["expiries_met"]
        line["token refreshes"] = stats["grants"].get("refresh_token", 0)
        line["invalid_grant"] = stats["invalid_grants"]
    if grants_alive is not None:
        line["grants alive"] = grants_alive
    return line


def run_demo(
    *,
    amqp_url: str,
    flows_dir: Path,
    out: TextIO,
    external: bool = False,
    platform: str | None = None,
    provider: str | None = None,
    credentials: Path | None = None,
) -> int:
    if not broker_reachable(amqp_url):
        sys.stderr.write(NO_BROKER.format(url=amqp_url))
        return 1
    if external:
        webhook, poll = load_demo_flows(flows_dir, amqp_url)
        hook = f"{(platform or 'http://127.0.0.1:9000').rstrip('/')}/hook/{webhook.id}"
        counts = drive(webhook, poll, hook, out)
        stats, alive = _remote_counts(provider, credentials)
        out.write(json.dumps(summary(counts, stats, alive)) + "\n")
        return 0 if complete(counts) else 1
    with tempfile.TemporaryDirectory(prefix="runtime-demo-") as folder:
        api = DemoApi(ProviderSettings(access_lifetime=ACCESS_LIFETIME)).start()
        os.environ["DEMO_API_URL"] = api.url
        webhook, poll = load_demo_flows(
            flows_dir,
            amqp_url,
            lock_url=f"file://{Path(folder) / 'locks'}",
            run=f"-{uuid.uuid4().hex[:4]}",
        )
        store = CredentialsFile(Path(folder) / "credentials.json")
        for name in GRANTS:
            sign_in(api.url, store, name)
        out.write(json.dumps({"demo": "signed in to the demo provider", "api": api.url,
                              "credentials": str(store.path)}) + "\n")  # fmt: skip
        lines = WorkerLines(out)
        runner = FlowRunner([webhook, poll], credentials=store, data=Path(folder) / "data",
                            out=lines)  # fmt: skip
        expected = sum(f.replicas(n) for f in (webhook, poll) for n in f.graph.nodes
                       if f.component_folder(n) is not None)  # fmt: skip
        try:
            runner.start()
            if not wait_until(lambda: lines.ready >= expected, 60):
                sys.stderr.write(f"{lines.ready} of {expected} workers started\n")
                return 1
            out.write(json.dumps({"demo": f"{expected} workers ready", "webhook":
                                  f"{runner.api_url}/hook/{webhook.id}"}) + "\n")  # fmt: skip
            counts = drive(webhook, poll, f"{runner.api_url}/hook/{webhook.id}", out)
            alive = _grants_alive(
                lambda: json.loads(store.path.read_text()), api.book.refresh_token_alive
            )
            out.write(json.dumps(summary(counts, api.stats(), alive)) + "\n")
            return 0 if complete(counts) and alive else 1
        finally:
            runner.stop()
            _remove(webhook, poll)
            api.stop()


def _remove(*flows: GraphFlow) -> None:
    """The demo's queues: a run leaves nothing on the broker."""
    for flow in flows:
        with AdminClient(flow.step(flow.first).amqp_url, name="demo") as admin:
            for step in flow.steps().values():
                topology.remove(step, admin)
            if flow.starts_with_webhook:
                admin.delete_queue(reply_queue(flow))


def _remote_counts(
    provider: str | None, credentials: Path | None
) -> tuple[dict[str, Any] | None, bool | None]:
    """The provider's counts and the saved grants' state, when the demo can see them."""
    if provider is None:
        return None, None
    stats = requests.get(f"{provider}/_admin/stats", timeout=10).json()
    if credentials is None or not credentials.exists():
        return stats, None

    def alive(token: str) -> bool:
        answer = requests.post(
            f"{provider}/_admin/alive", json={"refresh_token": token}, timeout=10
        )
        return bool(answer.json().get("alive"))

    return stats, _grants_alive(lambda: json.loads(credentials.read_text()), alive)


def _grants_alive(saved: Callable[[], dict[str, Any]], alive: Callable[[str], bool]) -> bool:
    """Whether the refresh token saved for each grant is the provider's live one. The flows
    go on refreshing while this looks (the polling one every few seconds), so a token just
    rotated may not be saved yet: asked again for a few seconds before it counts as lost."""
    return wait_until(
        lambda: all(alive(str(saved().get(name, {}).get("refreshToken"))) for name in GRANTS),
        10,
    )
