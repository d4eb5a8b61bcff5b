"""Everything the local platform runs for a set of flows, started and stopped as one.

One-step flow files get their topology and the platform API; whole flows also their routing
(bindings and the router), their start (schedule or webhook), their snapshots kept, and,
unless told not to, their workers under a supervisor. ``platform up`` and the demo both run
flows through this one class, and stop them in the order that loses nothing: no new
executions first, then the workers (each finishing its messages in flight), then the
routing, then the API.
"""

from __future__ import annotations

import sys
from pathlib import Path

from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.devtools.localplatform.platform import LocalPlatform
from runtime.devtools.localplatform.router import Router
from runtime.devtools.localplatform.schedule import Scheduler, cron_of
from runtime.devtools.localplatform.snapshots import SnapshotStore, default_folder
from runtime.devtools.localplatform.supervisor import Lines, Supervisor
from runtime.devtools.localplatform.webhooks import WebhookService


class FlowRunner:
    def __init__(
        self,
        flows: list[FlowSpec | GraphFlow],
        *,
        credentials: CredentialsFile | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        data: Path | None = None,
        workers: bool = True,
        out: Lines | None = None,
    ) -> None:
        self.graphs = [f for f in flows if isinstance(f, GraphFlow)]
        self.steps = [f for f in flows if isinstance(f, FlowSpec)]
        for graph in self.graphs:
            self.steps += list(graph.steps().values())
        self.workers = workers
        self.out: Lines = out or sys.stdout
        self.scheduler = Scheduler(self.graphs)
        self.webhooks = WebhookService(self.graphs)
        self.platform = LocalPlatform(
            self.steps,
            credentials=credentials,
            host=host,
            port=port,
            webhooks=self.webhooks.handle,
            snapshots=SnapshotStore(data or default_folder()),
        )
        self.host = host
        self.routers: list[Router] = []
        self.supervisors: list[Supervisor] = []

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.platform.api.port}"

    def start(self) -> FlowRunner:
        self.webhooks.start()
        self.platform.start()
        self.routers = [Router(graph).start() for graph in self.graphs]
        if self.workers:
            for graph in self.graphs:
                supervisor = Supervisor(
                    graph, self.api_url, out=self.out, name_the_flow=len(self.graphs) > 1
                )
                self.supervisors.append(supervisor.start())
        self.scheduler.start()
        return self

    def stop(self) -> None:
        self.scheduler.stop()
        for supervisor in self.supervisors:
            supervisor.stop()
        for router in self.routers:
            router.stop()
        self.platform.stop()
        self.webhooks.stop()

    def unsupervised(self) -> list[FlowSpec]:
        """The steps whose workers the user runs: every one-step flow's, and the whole
        flows' too when the runner starts no workers."""
        ids = {g.id for g in self.graphs}
        return [s for s in self.steps if not self.workers or s.flow_id not in ids]

    def describe(self, graph: GraphFlow) -> str:
        edges = ", ".join(f"{e.source}->{e.target}" for e in graph.graph.edges) or "none"
        return f"flow {graph.id}: routing {edges}; {self._start_of(graph)}"

    def _start_of(self, graph: GraphFlow) -> str:
        if graph.starts_with_webhook:
            kind = "request-reply " if graph.local.request_reply else ""
            return f"{kind}webhook at {self.api_url}/hook/{graph.id}"
        if not graph.polls:
            return "started by the messages sent to its first step"
        every = graph.local.every
        return f"started every {every}" if every else f"started on cron {cron_of(graph)!r} (UTC)"
