"""docker-compose.yml and the Dockerfile: checked, since Docker cannot run here."""

from __future__ import annotations

import re

import yaml

from runtime.devtools.localplatform.graph_files import load_graph
from runtime.worker.settings import REQUIRED_ALWAYS, REQUIRED_FOR_MESSAGES, Settings
from tests.helpers import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
WORKERS = {
    "hook-fetch": ("records-webhook.json", "step_2"),
    "hook-reply": ("records-webhook.json", "step_3"),
    "poll-records": ("records-poll.json", "step_1"),
    "poll-fetch": ("records-poll.json", "step_2"),
}
"""Each worker service: the demo flow and the node it runs."""


def test_compose_runs_one_worker_service_per_step_of_the_demos_flows(monkeypatch):
    monkeypatch.setenv("DEMO_API_URL", "http://demo-api:8400")
    for flow_file in {f for f, _ in WORKERS.values()}:
        flow = load_graph(ROOT / "demo" / "flows" / flow_file)
        steps = {n.id for n in flow.graph.nodes if flow.component_folder(n) is not None}
        assert steps == {node for f, node in WORKERS.values() if f == flow_file}


def test_compose_wires_each_worker_exactly_as_the_platform_does(monkeypatch):
    monkeypatch.setenv("DEMO_API_URL", "http://demo-api:8400")
    for service, (flow_file, node) in WORKERS.items():
        flow = load_graph(ROOT / "demo" / "flows" / flow_file)
        flow = flow.model_copy(
            update={"local": flow.local.model_copy(update={
                "amqp_url": "amqp://guest:guest@rabbitmq:5672/",
                "credential_lock_url": "redis://redis:6379/0",
            })}
        )  # fmt: skip
        expected = flow.steps()[node].worker_env("http://platform:9000")
        if service != "hook-reply":  # ours serve metrics and probes on this port
            expected["ELASTICIO_METRICS_PORT"] = "9464"
        environment = {k: str(v) for k, v in SERVICES[service]["environment"].items()}
        assert environment == expected, service
        replicas = SERVICES[service].get("deploy", {}).get("replicas", 1)
        assert replicas == flow.replicas(flow.node(node)), service


def test_every_worker_environment_is_complete_and_valid():
    for service in WORKERS:
        environment = {k: str(v) for k, v in SERVICES[service]["environment"].items()}
        for name in (*REQUIRED_ALWAYS, *REQUIRED_FOR_MESSAGES):
            assert environment.get(f"ELASTICIO_{name}"), (service, name)
        Settings.from_env(environment)  # raises on anything malformed


def test_compose_has_the_broker_with_its_ui_the_platform_the_api_and_the_demo():
    assert SERVICES["rabbitmq"]["image"].endswith("management")
    assert "15672:15672" in SERVICES["rabbitmq"]["ports"]
    assert "platform" in SERVICES
    assert "demo-api" in SERVICES
    assert "--external" in SERVICES["demo"]["command"]
    platform_command = SERVICES["platform"]["command"]
    for flow_file, _node in WORKERS.values():
        assert f"demo/flows/{flow_file}" in platform_command
    assert "--no-workers" in platform_command
    assert "http://demo-api:8400" in platform_command


def test_dockerfile_runs_the_worker_as_a_non_root_user_from_pins_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.MULTILINE)
    assert "-c constraints.txt" in dockerfile
    assert re.search(r"^USER worker$", dockerfile, re.MULTILINE)
    assert 'CMD ["python", "-m", "runtime", "run"]' in dockerfile
    assert "HEALTHCHECK" in dockerfile and '"runtime", "health"' in dockerfile
    for copied in ("component.json", "verifyCredentials.py", "lib", "runtime", "demo"):
        assert copied in dockerfile


def test_compose_runs_the_http_step_as_three_replicas_sharing_a_redis_lock():
    assert SERVICES["hook-fetch"]["deploy"]["replicas"] >= 3
    assert SERVICES["redis"]["image"].startswith("redis:")
    for service in WORKERS:
        environment = SERVICES[service]["environment"]
        assert environment["ELASTICIO_CREDENTIAL_LOCK_URL"] == "redis://redis:6379/0"
        assert "redis" in SERVICES[service]["depends_on"]
    assert "container_name" not in SERVICES["hook-fetch"]  # replicas need their own names


def test_the_image_installs_every_runtime_dependency():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    install = " ".join(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if "pip install -c" in line
    )  # the base's, and the local stage's own (croniter, for the local platform's schedules)
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        assert f" {name}" in install, name


def test_the_deployed_image_is_the_worker_without_the_local_run_tools():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.MULTILINE)
    assert stages[-1] == "worker"  # the default target
    worker = dockerfile.split("AS worker", 1)[1]
    assert "rm -rf runtime/devtools" in worker
    assert "demo" not in worker.replace("devtools", "")
    for service in WORKERS:
        # the Node.js step runs on elastic.io's sailor, in an image of its own
        expected = "node-step" if service == "hook-reply" else "worker"
        assert SERVICES[service]["build"]["target"] == expected
    for service in ("platform", "demo-api", "demo"):
        assert SERVICES[service]["build"]["target"] == "local"


def test_a_local_run_tool_missing_from_an_installation_is_a_clear_error(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoDevtools:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('runtime.devtools'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoDevtools())\n"
    )
    from tests.helpers import run_cli

    result = run_cli("demo-api", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert result.returncode == 2
    assert "'demo-api' is a tool for local runs" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_cli("validate", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"}).returncode == 0
