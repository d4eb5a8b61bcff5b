"""Reading a whole flow's file and refusing what cannot run (the file's shape is
runtime.devtools.localplatform.graph): ``load_graph`` parses and resolves it, ``check``
names every node or edge that is wrong, ``mapper_expressions`` lists an edge's JSONata."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.devtools.jsonfiles import read_json_object
from runtime.devtools.localplatform.flow import resolve_references
from runtime.devtools.localplatform.graph import (
    WEBHOOK,
    Edge,
    GraphFlow,
    Node,
    parse_command,
)
from runtime.errors import ComponentError, ConfigError
from runtime.mapping.jsonata import ExpressionError, compiled


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
        component, function = parse_command(node)
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
