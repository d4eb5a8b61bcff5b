"""A whole flow, as the platform's flows API returns it, plus where its components live here.

::

    {"data": {"id": "orders", "attributes": {
        "type": "ordinary", "cron": "*/5 * * * *", "default_mapper_type": "jsonata",
        "graph": {
          "nodes": [{"id": "step_1", "command": "acme/shop:newOrders", "fields": {...},
                     "credentials_id": "shop-account"},
                    {"id": "step_2", "command": "acme/crm:upsert@1.2.0"}],
          "edges": [{"source": "step_1", "target": "step_2",
                     "config": {"mapper": {"name": "customer.name", "total": "$sum(lines.price)"}}}]
        }}},
     "local": {
        "components": {"acme/shop": {"path": "../shop"},
                       "acme/crm": {"path": "../crm-node", "runtime": "nodejs"}},
        "credentials": {"shop-account": {"entry": "shop"}},
        "replicas": {"step_2": 3}, "every": "5s"}}

``data.attributes`` (or the attributes alone, or ``data`` holding them) is the platform's
flow, its ``nodes_config`` included (replicas, prefetch, passthrough, log level per step; on
the platform a step's passthrough is on unless disabled, and so it is here); ``local`` is
this machine's: each component's folder (relative to the flow file) and the
runtime that runs it (``python``, ours, or ``nodejs``, the sailor the component installs),
which credentials-file entry (``entry``) or platform-held secret (``secretId``) each
``credentials_id`` is, replicas per node, and ``every`` to override ``cron`` in demos.

Every node becomes a :class:`FlowSpec` (queue, routing keys, environment, step data) so a node
runs exactly as a one-step flow file does. :func:`check` refuses a flow that cannot run,
naming the node or edge (both in runtime.devtools.localplatform.graph_files, with
:func:`load_graph`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.devtools.localplatform.flow import Crypto, FlowSpec
from runtime.errors import ConfigError

WEBHOOK = "elasticio/webhook"
"""The platform's webhook component: a flow starting with it is called over HTTP; the local
platform plays its part itself, so it needs no folder."""
_COMMAND = re.compile(
    r"^(?P<component>[^:@\s]+/[^:@\s]+):(?P<function>[^:@\s]+)(@(?P<version>\S+))?$"
)
OUTPUT_LIMIT = 10_000
"""Events each node's output queues keep for ``tail``: its data is routed on all the same."""
_EVERY = re.compile(r"^(?P<amount>\d+(\.\d+)?)\s*(?P<unit>ms|s|m|h)$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Node(_Model):
    id: str
    command: str
    fields: dict[str, Any] = {}
    credentials_id: str | None = None
    name: str = ""

    @property
    def component(self) -> str:
        return parse_command(self)[0]

    @property
    def function(self) -> str:
        return parse_command(self)[1]


class EdgeConfig(_Model):
    mapper_type: str | None = None
    condition: str | None = None
    mapper: dict[str, Any] | str | None = None


class Edge(_Model):
    id: str | None = None
    source: str
    target: str
    config: EdgeConfig = EdgeConfig()

    @property
    def name(self) -> str:
        return self.id or f"{self.source}->{self.target}"


class Passthrough(_Model):
    disabled: bool = False


class NodeConfig(_Model):
    """The platform's per-step settings (``nodes_config``)."""

    replicas: int | None = Field(default=None, ge=1)
    prefetch: int | None = Field(default=None, ge=1)
    passthrough: Passthrough = Passthrough()
    log_level: str | None = None


class Graph(_Model):
    nodes: list[Node]
    edges: list[Edge] = []


class LocalComponent(_Model):
    path: str
    runtime: Literal["python", "nodejs"] = "python"


class LocalCredential(_Model):
    entry: str | None = None
    """A credentials-file entry, merged into the step's cfg."""
    secret_id: str | None = Field(default=None, alias="secretId")
    """A platform-held secret: the step's cfg gets ``secretId``."""


class Local(_Model):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    flow_id: str | None = Field(default=None, alias="flowId")
    components: dict[str, LocalComponent] = {}
    credentials: dict[str, LocalCredential] = {}
    replicas: dict[str, int] = {}
    every: str | None = None
    request_reply: bool = Field(default=False, alias="requestReply")
    reply_timeout: float = Field(default=30.0, alias="replyTimeout", gt=0)
    amqp_url: str | None = Field(default=None, alias="amqpUrl")
    credential_lock_url: str | None = Field(default=None, alias="credentialLockUrl")
    prefetch: int = Field(default=10, ge=1)
    """Each step's, where ``nodes_config`` gives none."""
    crypto: Crypto = Crypto()
    queue_type: Literal["classic", "quorum"] = Field(default="classic", alias="queueType")
    env: dict[str, str] = {}
    """More environment for every worker of the flow (``ELASTICIO_DATA_RATE_LIMIT``...)."""


class GraphFlow(_Model):
    """A flow of several steps: the platform's attributes and the local section."""

    id: str
    type: Literal["ordinary", "long_running"] = "ordinary"
    cron: str | None = None
    default_mapper_type: str = "jsonata"
    graph: Graph
    nodes_config: dict[str, NodeConfig] = {}
    local: Local = Local()
    folder: Path = Path()
    """Where the flow file is: components' paths are relative to it."""

    def node(self, node_id: str) -> Node:
        return next(n for n in self.graph.nodes if n.id == node_id)

    def outgoing(self, node_id: str) -> list[Edge]:
        return [e for e in self.graph.edges if e.source == node_id]

    @property
    def first(self) -> Node:
        """The node no edge leads to (its trigger starts each execution)."""
        targets = {e.target for e in self.graph.edges}
        return next((n for n in self.graph.nodes if n.id not in targets), self.graph.nodes[0])

    @property
    def starts_with_webhook(self) -> bool:
        return self.first.component == WEBHOOK

    @property
    def polls(self) -> bool:
        """Whether the flow starts with a trigger of its own (not the webhook): the flows the
        platform starts on a schedule."""
        from runtime.step.component import load_component

        folder = self.component_folder(self.first)
        if folder is None:
            return False
        nodejs = self.runtime_of(self.first) == "nodejs"
        component = load_component(folder, language="nodejs" if nodejs else "python")
        return component.find_step(self.first.function)[0] == "triggers"

    def component_folder(self, node: Node) -> Path | None:
        """Where the node's component lives; None for the platform's webhook."""
        local = self.local.components.get(node.component)
        if local is None:
            return None
        return (self.folder / local.path).resolve()

    def runtime_of(self, node: Node) -> str:
        local = self.local.components.get(node.component)
        return local.runtime if local is not None else "platform"

    def replicas(self, node: Node) -> int:
        """``local.replicas``, else the platform's ``nodes_config``, else one."""
        configured = self.nodes_config.get(node.id, NodeConfig()).replicas
        return self.local.replicas.get(node.id, configured or 1)

    def step(self, node: Node) -> FlowSpec:
        """The node as a one-step flow: queue, routing keys, environment and step data."""
        config = dict(node.fields)
        credential = None
        if node.credentials_id is not None:
            ref = self.local.credentials[node.credentials_id]
            credential = ref.entry
            if ref.secret_id is not None:
                config["secretId"] = ref.secret_id
        settings = self.nodes_config.get(node.id, NodeConfig())
        values: dict[str, Any] = {
            "flowId": self.id,
            "stepId": node.id,
            "function": node.function,
            "config": config,
            "credential": credential,
            "accountId": node.credentials_id,
            "isPassthrough": not settings.passthrough.disabled,
            "prefetch": settings.prefetch or self.local.prefetch,
            "env": {
                **self.local.env,
                **({"LOG_LEVEL": settings.log_level} if settings.log_level else {}),
            },
            "crypto": self.local.crypto,
            "queueType": self.local.queue_type,
            "outputLimit": OUTPUT_LIMIT,
        }
        if self.local.amqp_url:
            values["amqpUrl"] = self.local.amqp_url
        if self.local.credential_lock_url is not None:
            values["credentialLockUrl"] = self.local.credential_lock_url
        return FlowSpec.model_validate(values)

    def steps(self) -> dict[str, FlowSpec]:
        return {node.id: self.step(node) for node in self.graph.nodes}

    def every_seconds(self) -> float | None:
        if self.local.every is None:
            return None
        match = _EVERY.match(self.local.every.strip())
        if match is None:
            raise ConfigError(
                f"flow {self.id}: local.every {self.local.every!r} is not a period such as "
                "'5s', '500ms', '2m' or '1h'"
            )
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match["unit"]]
        return float(match["amount"]) * scale


def parse_command(node: Node) -> tuple[str, str]:
    match = _COMMAND.match(node.command.strip())
    if match is None:
        raise ConfigError(
            f"node {node.id}: command {node.command!r} is not 'team/component:function' "
            "(optionally '@version')"
        )
    return match["component"], match["function"]
