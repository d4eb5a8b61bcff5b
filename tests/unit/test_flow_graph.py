"""A whole flow's file: the platform's flow JSON read as it comes from its API, and every
flow that cannot run refused with the node or edge named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runtime.devtools.localplatform.graph_files import check, load_graph, parse_graph
from runtime.devtools.localplatform.router import Mapper
from runtime.errors import ConfigError
from runtime.mapping.jsonata import ExpressionError
from tests.helpers import FIXTURES, run_cli

THREE = FIXTURES / "flows" / "three-steps.json"


def flow_json() -> dict[str, Any]:
    return json.loads(THREE.read_text())


def problems_of(data: dict[str, Any], tmp_path: Path) -> list[str]:
    # components' paths are relative to the flow file: keep the fixture's folder
    return check(parse_graph(data, THREE))


def test_the_fixture_flow_is_read_as_the_platform_gives_it():
    flow = load_graph(THREE)
    assert flow.id == "three-steps"
    assert [n.id for n in flow.graph.nodes] == ["step_1", "step_2", "step_3"]
    assert flow.first.id == "step_1"
    assert flow.node("step_3").component == "local/flowsteps"
    assert flow.node("step_3").function == "work"  # the @version is read and left
    assert flow.runtime_of(flow.node("step_2")) == "nodejs"
    steps = flow.steps()
    assert steps["step_2"].messages_queue == "three-steps:step_2:messages"
    assert steps["step_2"].function == "passthrough"
    assert steps["step_1"].prefetch == 10


def test_bare_attributes_and_data_without_attributes_read_the_same():
    data = flow_json()
    bare = {**data["data"]["attributes"], "local": data["local"]}
    flow = parse_graph(bare, THREE)
    assert [n.id for n in flow.graph.nodes] == ["step_1", "step_2", "step_3"]
    assert flow.id == "three-steps"  # no id in the attributes: the file's name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda g: g["nodes"][1].update(command="local/nowhere:passthrough"),
         "node step_2: component local/nowhere is not in local.components"),
        (lambda g: g["nodes"][0].update(command="local/flowsteps:noSuchStep"),
         "node step_1: ") ,
        (lambda g: g["nodes"][0].update(command="not a command"),
         "node step_1: command 'not a command' is not 'team/component:function'"),
        (lambda g: g["edges"][1].update(target="step_9"),
         "edge mapper:step_2:step_3: target 'step_9' is not a node of the flow"),
        (lambda g: g["edges"][0]["config"]["mapper"].update(n="n +"),
         "edge mapper:step_1:step_2: field 'mapper:step_1:step_2: n': the JSONata expression"),
        (lambda g: g["edges"].append({"source": "step_3", "target": "step_1"}),
         "closes a cycle"),
        (lambda g: g["nodes"][0].update(credentials_id="nobody"),
         "node step_1: credentials_id 'nobody' is not in local.credentials"),
        (lambda g: g["nodes"].append(copy.deepcopy(g["nodes"][0])),
         "node step_1: the id is used by more than one node"),
    ],
)  # fmt: skip
def test_a_flow_that_cannot_run_is_refused_naming_the_node_or_edge(change, expected, tmp_path):
    data = flow_json()
    change(data["data"]["attributes"]["graph"])
    problems = problems_of(data, tmp_path)
    assert any(expected in p for p in problems), problems


def test_an_unknown_function_lists_the_ones_there_are(tmp_path):
    data = flow_json()
    data["data"]["attributes"]["graph"]["nodes"][0]["command"] = "local/flowsteps:noSuchStep"
    [problem] = problems_of(data, tmp_path)
    assert "no trigger or action named 'noSuchStep'" in problem and "work" in problem


def test_a_required_field_missing_from_a_nodes_fields_is_named(tmp_path):
    root = Path(__file__).resolve().parents[2]
    data = {
        "graph": {
            "nodes": [{"id": "step_1", "command": "acme/rest:httpRequest", "fields": {}}],
            "edges": [],
        },
        "local": {"components": {"acme/rest": {"path": str(root)}}},
    }
    problems = check(parse_graph(data, tmp_path / "flow.json"))
    assert problems and "node step_1: acme/rest:httpRequest requires the field(s)" in problems[0]
    assert "url" in problems[0]


def test_platform_validate_says_what_is_wrong_and_exits_1(tmp_path):
    data = flow_json()
    data["data"]["attributes"]["graph"]["edges"][0]["source"] = "step_0"
    data["local"]["components"] = {
        name: {**c, "path": str((THREE.parent / c["path"]).resolve())}
        for name, c in data["local"]["components"].items()
    }
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    result = run_cli("platform", "validate", str(THREE), str(broken))
    assert result.returncode == 1
    assert "flow three-steps is valid" in result.stdout
    assert "edge mapper:step_1:step_2: source 'step_0' is not a node of the flow" in result.stdout


def test_a_local_period_that_is_not_one_is_refused():
    data = flow_json()
    data["local"]["every"] = "soon"
    flow = parse_graph(data, THREE)
    with pytest.raises(ConfigError, match=r"local\.every 'soon' is not a period"):
        flow.every_seconds()


def test_a_mapper_builds_the_body_from_the_incoming_body_and_passthrough():
    flow = load_graph(THREE)
    mapper = Mapper(flow.graph.edges[0])
    message = {"body": {"n": 4}, "passthrough": {"step_1": {"body": {"n": 3}}}}
    assert mapper.body(message) == {"n": 4, "doubled": 8, "label": "#4", "meta": {"first": 3}}


def test_a_whole_body_mapper_and_a_failing_expression():
    flow = load_graph(THREE)
    edge = flow.graph.edges[0].model_copy(
        update={"config": flow.graph.edges[0].config.model_copy(update={"mapper": "items[0]"})}
    )
    assert Mapper(edge).body({"body": {"items": [{"a": 1}]}}) == {"a": 1}
    failing = edge.model_copy(
        update={"config": edge.config.model_copy(update={"mapper": {"x": "$number('abc')"}})}
    )
    with pytest.raises(ExpressionError, match="mapper:step_1:step_2: x"):
        Mapper(failing).body({"body": {}})


def test_the_platforms_nodes_config_sets_replicas_prefetch_passthrough_and_log_level():
    flow = load_graph(FIXTURES / "flows" / "platform-export.json")
    first = flow.steps()["step_1"]
    assert (first.prefetch, first.is_passthrough, first.extra_env) == (
        4,
        False,
        {"LOG_LEVEL": "warn"},
    )
    second = flow.steps()["step_2"]
    assert (second.prefetch, second.is_passthrough) == (10, True)  # the platform's defaults
    assert flow.replicas(flow.node("step_1")) == 1
    assert flow.node("step_1").function == "getPetsByStatus"
