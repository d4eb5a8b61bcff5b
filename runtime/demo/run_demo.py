"""``python -m runtime demo``: the whole product on one machine, then it stops by itself.

It starts the demo OAuth2 provider and API (tokens live 3 seconds, refresh tokens rotate),
signs in to it, starts the local platform (topology, platform API, credentials file) and one
worker per demo flow, as the platform would, and runs the scenario of runtime.demo.scenario.
With ``--external``, the provider, platform and workers are already running elsewhere (the
docker-compose services) and only the scenario runs.
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
from typing import TextIO

from runtime.amqp import broker_reachable
from runtime.auth.credentials_file import CredentialsFile
from runtime.demo.api import DemoApi
from runtime.demo.scenario import drive
from runtime.demo.signin import sign_in
from runtime.demo.tokens import ProviderSettings
from runtime.localplatform.flow import FlowSpec, load_flow
from runtime.localplatform.platform import LocalPlatform

ACCESS_LIFETIME = 3.0
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

    SHOWN = frozenset({"token_refreshed", "credential_reloaded", "startup_failed", "broker_lost"})

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


def run_demo(*, amqp_url: str, flows_dir: Path, component: Path, out: TextIO,
             external: bool = False) -> int:  # fmt: skip
    if not broker_reachable(amqp_url):
        sys.stderr.write(NO_BROKER.format(url=amqp_url))
        return 1
    http, poll = load_demo_flows(flows_dir, amqp_url)
    if external:
        return drive(http, poll, out)
    with tempfile.TemporaryDirectory(prefix="runtime-demo-") as folder:
        api = DemoApi(ProviderSettings(access_lifetime=ACCESS_LIFETIME)).start()
        store = CredentialsFile(Path(folder) / "credentials.json")
        first = sign_in(api.url, store, "demo").refresh_token
        out.write(json.dumps({"demo": "signed in to the demo provider", "api": api.url,
                              "credentials": str(store.path)}) + "\n")  # fmt: skip
        platform = LocalPlatform([http, poll], credentials=store).start()
        workers: list[_Worker] = []
        try:
            for label, flow in (("httpRequest", http), ("pollRecords", poll)):
                env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
                env.update(flow.worker_env(platform.api_url))
                workers.append(_Worker(label, env, component, out))
            for worker in workers:
                if not worker.ready.wait(30):
                    sys.stderr.write(f"the {worker.label} worker did not start\n")
                    return 1
            code = drive(http, poll, out)
            refreshed = json.loads(store.path.read_text())["demo"]
            out.write(json.dumps({
                "demo": "credentials file after the run",
                "refresh token rotated since sign-in": refreshed.get("refreshToken") != first,
                "token calls at the provider": api.stats()["token_calls"],
            }) + "\n")  # fmt: skip
            return code
        finally:
            for worker in workers:
                worker.stop()
            platform.stop(remove_topology=True)
            api.stop()
