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
naming the node or edge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.devtools.jsonfiles import read_json_object
from runtime.devtools.localplatform.flow import Crypto, FlowSpec, resolve_references
from runtime.errors import ComponentError, ConfigError
from runtime.mapping.jsonata import ExpressionError, compiled

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
        return _parse_command(self)[0]

    @property
    def function(self) -> str:
        return _parse_command(self)[1]


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


def is_graph_file(data: Mapping[str, Any]) -> bool:
    """Whether a flow file's JSON is a whole flow (else it is one step)."""
    return "graph" in _attributes(data) or "data" in data


def _attributes(data: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = data.get("data", data)
    if isinstance(inner, Mapping):
        attributes = inner.get("attributes", inner)
        if isinstance(attributes, Mapping):
            return attributes
    return {}


def load_graph(path: str | Path, env: Mapping[str, str] | None = None) -> GraphFlow:
    """Read a whole flow's file, resolving ``${ENV_VAR}`` references, and check it.

    Raises:
        ConfigError: the file cannot be read, or lists every reason the flow cannot run.
    """
    import os

    data = read_json_object(str(path), what="flow")
    resolved = resolve_references(data, os.environ if env is None else env, str(path))
    flow = parse_graph(resolved, Path(path))
    problems = check(flow)
    if problems:
        raise ConfigError(f"flow file {path}:\n  " + "\n  ".join(problems))
    return flow


def parse_graph(data: Mapping[str, Any], path: Path) -> GraphFlow:
    """The flow of a flow file's JSON, its shape checked (``check`` does the rest).

    Raises:
        ConfigError: naming the file and the field that is wrong.
    """
    attributes = dict(_attributes(data))
    inner = data.get("data")
    local = data.get("local", {})
    flow_id = (
        (local.get("flowId") if isinstance(local, Mapping) else None)
        or (inner.get("id") if isinstance(inner, Mapping) else None)
        or attributes.get("id")
        or path.stem
    )
    try:
        return GraphFlow.model_validate(
            {**attributes, "id": str(flow_id), "local": local, "folder": path.parent}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"flow file {path}: {problems}") from None


def _parse_command(node: Node) -> tuple[str, str]:
    match = _COMMAND.match(node.command.strip())
    if match is None:
        raise ConfigError(
            f"node {node.id}: command {node.command!r} is not 'team/component:function' "
            "(optionally '@version')"
        )
    return match["component"], match["function"]


def check(flow: GraphFlow) -> list[str]:
    """Every reason the flow cannot run, each naming its node or edge; empty when it can."""
    problems: list[str] = []
    ids = [n.id for n in flow.graph.nodes]
    if not ids:
        return [f"flow {flow.id}: the graph has no nodes"]
    problems += [f"node {i}: the id is used by more than one node" for i in _repeated(ids)]
    for node in flow.graph.nodes:
        problems += _node_problems(flow, node)
    for edge in flow.graph.edges:
        problems += _edge_problems(flow, edge, set(ids))
    if not problems:
        problems += _shape_problems(flow)
    return problems


def _repeated(ids: list[str]) -> list[str]:
    return sorted({i for i in ids if ids.count(i) > 1})


def _node_problems(flow: GraphFlow, node: Node) -> list[str]:
    from runtime.step.component import load_component

    try:
        component, function = _parse_command(node)
    except ConfigError as exc:
        return [str(exc)]
    problems: list[str] = []
    if node.credentials_id is not None and node.credentials_id not in flow.local.credentials:
        problems.append(
            f"node {node.id}: credentials_id {node.credentials_id!r} is not in local.credentials "
            '(add {"entry": NAME} for a credentials-file entry or {"secretId": ID})'
        )
    if node.id in flow.local.replicas and flow.local.replicas[node.id] < 1:
        problems.append(f"node {node.id}: local.replicas must be 1 or more")
    if component == WEBHOOK:
        if node.id != flow.first.id:
            problems.append(f"node {node.id}: the webhook can only start a flow")
        return problems
    folder = flow.component_folder(node)
    if folder is None:
        return [
            *problems,
            f"node {node.id}: component {component} is not in local.components (add "
            f'"{component}": {{"path": "FOLDER", "runtime": "python" or "nodejs"}})',
        ]
    try:
        nodejs = flow.runtime_of(node) == "nodejs"
        loaded = load_component(folder, language="nodejs" if nodejs else "python")
        _kind, step = loaded.find_step(function)
    except ComponentError as exc:
        return [*problems, f"node {node.id}: {'; '.join(exc.problems)}"]
    except ConfigError as exc:
        return [*problems, f"node {node.id}: {exc}"]
    credential_fields = set(loaded.credential_fields())
    missing = [
        name
        for name, spec in step.fields.items()
        if spec.required and name not in node.fields and name not in credential_fields
    ]
    if missing:
        problems.append(
            f"node {node.id}: {component}:{function} requires the field(s) "
            f"{', '.join(sorted(missing))}, missing from its fields"
        )
    return problems


def _edge_problems(flow: GraphFlow, edge: Edge, ids: set[str]) -> list[str]:
    problems = [
        f"edge {edge.name}: {end} {node!r} is not a node of the flow"
        for end, node in (("source", edge.source), ("target", edge.target))
        if node not in ids
    ]
    kind = edge.config.mapper_type or flow.default_mapper_type
    if edge.config.mapper is not None and kind != "jsonata":
        problems.append(
            f"edge {edge.name}: mapper type {kind!r} is not supported here (only jsonata)"
        )
        return problems
    for field, text in mapper_expressions(edge):
        try:
            compiled(text, f"{edge.name}: {field}")
        except ExpressionError as exc:
            problems.append(f"edge {edge.name}: {exc}")
    if edge.config.condition:
        problems.append(
            f"edge {edge.name}: conditions are not supported by the local platform; "
            "route with a step of the flow instead"
        )
    return problems


def mapper_expressions(edge: Edge) -> list[tuple[str, str]]:
    """The (field, expression) pairs of an edge's mapper; a whole-body expression's field
    is ``body``."""
    mapper = edge.config.mapper
    if mapper is None:
        return []
    if isinstance(mapper, str):
        return [("body", mapper)]
    return [(field, text) for field, text in _flatten(mapper) if isinstance(text, str)]


def _flatten(mapper: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in mapper.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            pairs += _flatten(value, f"{name}.")
        else:
            pairs.append((name, value))
    return pairs


def _shape_problems(flow: GraphFlow) -> list[str]:
    """A cycle, or nodes no execution reaches."""
    edges = {n.id: [e.target for e in flow.outgoing(n.id)] for n in flow.graph.nodes}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in edges[node]:
            if state.get(target) == "open":
                return [*path, node, target]
            if target not in state:
                found = visit(target, [*path, node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in edges:
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                start = cycle.index(cycle[-1])
                loop = " -> ".join(cycle[start:])
                return [
                    f"edge {cycle[-2]}->{cycle[-1]}: closes a cycle ({loop}); "
                    "a flow is a graph without cycles"
                ]
    starts = [n.id for n in flow.graph.nodes if n.id not in {e.target for e in flow.graph.edges}]
    if len(starts) > 1:
        return [
            f"flow {flow.id}: nodes {', '.join(starts)} are all without an incoming edge; a "
            "flow has one first step"
        ]
    return []
