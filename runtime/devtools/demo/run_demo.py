"""``python -m runtime demo``: the whole product on one machine, then it stops by itself.

It starts the demo OAuth2 provider and API (tokens live 3 seconds, refresh tokens rotate and
a reused one revokes the grant), signs in to it, starts the local platform (topology,
platform API, credentials file), three replicas of the httpRequest step and one pollRecords
worker, all sharing the one credential as the platform would wire them, and runs the
scenario of runtime.devtools.demo.scenario. The summary counts the provider's refreshes against the
expiries the workers met: the two must be equal, whatever the number of replicas. With
``--external``, the provider, platform and workers run elsewhere (the docker-compose
services) and only the scenario runs; ``--provider`` and ``--credentials`` let it report the
same counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, TextIO

import requests

from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.scenario import complete, drive
from runtime.devtools.demo.signin import sign_in
from runtime.devtools.demo.tokens import ProviderSettings
from runtime.devtools.localplatform.flow import FlowSpec, load_flow
from runtime.devtools.localplatform.platform import LocalPlatform
from runtime.worker.amqp import broker_reachable

ACCESS_LIFETIME = 3.0
HTTP_REPLICAS = 3
NO_BROKER = """\
No RabbitMQ answers at {url}.
Start one, then run this again:
  - on this machine:   rabbitmq-server -detached
  - with Docker:       docker compose up rabbitmq   (or the whole demo: docker compose up)
  - elsewhere:         RABBITMQ_URL=amqp://user:password@host:5672/ scripts/demo
"""


def load_demo_flows(folder: Path, amqp_url: str) -> tuple[FlowSpec, FlowSpec]:
    flows = [load_flow(folder / name) for name in ("http-request.json", "poll-records.json")]
    http, poll = (f.model_copy(update={"amqp_url": amqp_url}) for f in flows)
    return http, poll


class _Worker:
    """A worker process; its log lines about tokens are shown, the rest kept quiet."""

    SHOWN = frozenset(
        {"token_refreshed", "credential_reloaded", "startup_failed", "broker_lost", "keys_conflict"}
    )

    def __init__(self, label: str, env: dict[str, str], cwd: Path, out: TextIO) -> None:
        self.label = label
        self.ready = threading.Event()
        self.out = out
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "run", "--log-format", "json"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout or ():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "worker_ready":
                self.ready.set()
            if entry.get("msg") in self.SHOWN or entry.get("level") == "error":
                fields = {k: v for k, v in entry.items() if k not in ("timestamp", "level")}
                self.out.write(json.dumps({"worker": self.label, **fields}) + "\n")
                self.out.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def summary(
    counts: dict[str, int], stats: dict[str, Any] | None, grant_alive: bool | None
) -> dict[str, Any]:
    """The last line: what came back, and whether replicas multiplied the refreshes."""
    line: dict[str, Any] = {"demo": "done" if complete(counts) else "incomplete"}
    line.update({k: v for k, v in counts.items() if k not in ("sent", "records expected")})
    line["httpRequest replicas"] = HTTP_REPLICAS
    if stats is not None:
        line["expiries met"] = stats["expiries_met"]
        line["token refreshes"] = stats["grants"].get("refresh_token", 0)
        line["invalid_grant"] = stats["invalid_grants"]
    if grant_alive is not None:
        line["grant alive"] = grant_alive
    return line


def run_demo(
    *,
    amqp_url: str,
    flows_dir: Path,
    component: Path,
    out: TextIO,
    external: bool = False,
    provider: str | None = None,
    credentials: Path | None = None,
) -> int:
    if not broker_reachable(amqp_url):
        sys.stderr.write(NO_BROKER.format(url=amqp_url))
        return 1
    http, poll = load_demo_flows(flows_dir, amqp_url)
    if external:
        counts = drive(http, poll, out)
        stats, alive = _remote_counts(provider, credentials)
        out.write(json.dumps(summary(counts, stats, alive)) + "\n")
        return 0 if complete(counts) else 1
    with tempfile.TemporaryDirectory(prefix="runtime-demo-") as folder:
        api = DemoApi(ProviderSettings(access_lifetime=ACCESS_LIFETIME)).start()
        store = CredentialsFile(Path(folder) / "credentials.json")
        sign_in(api.url, store, "demo")
        out.write(json.dumps({"demo": "signed in to the demo provider", "api": api.url,
                              "credentials": str(store.path)}) + "\n")  # fmt: skip
        locks = f"file://{Path(folder) / 'locks'}"
        http, poll = (f.model_copy(update={"credential_lock_url": locks}) for f in (http, poll))
        platform = LocalPlatform([http, poll], credentials=store).start()
        workers: list[_Worker] = []
        try:
            steps = [(f"httpRequest-{n}", http) for n in range(1, HTTP_REPLICAS + 1)]
            for label, flow in [*steps, ("pollRecords", poll)]:
                env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
                env.update(flow.worker_env(platform.api_url))
                workers.append(_Worker(label, env, component, out))
            for worker in workers:
                if not worker.ready.wait(30):
                    sys.stderr.write(f"the {worker.label} worker did not start\n")
                    return 1
            counts = drive(http, poll, out, per_round=HTTP_REPLICAS)
            saved = json.loads(store.path.read_text())["demo"]
            alive = api.book.refresh_token_alive(str(saved.get("refreshToken")))
            out.write(json.dumps(summary(counts, api.stats(), alive)) + "\n")
            return 0 if complete(counts) and alive else 1
        finally:
            for worker in workers:
                worker.stop()
            platform.stop(remove_topology=True)
            api.stop()


def _remote_counts(
    provider: str | None, credentials: Path | None
) -> tuple[dict[str, Any] | None, bool | None]:
    """The provider's counts and the saved grant's state, when the demo can see them."""
    if provider is None:
        return None, None
    stats = requests.get(f"{provider}/_admin/stats", timeout=10).json()
    if credentials is None or not credentials.exists():
        return stats, None
    saved = json.loads(credentials.read_text())["demo"]
    answer = requests.post(
        f"{provider}/_admin/alive", json={"refresh_token": saved.get("refreshToken")}, timeout=10
    )
    return stats, bool(answer.json().get("alive"))
