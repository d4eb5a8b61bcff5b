"""A component author's first hour: ``python -m runtime new``, its tests, its action, its image.

And the runtime as a package of its own: what ``pip install`` of this project gives a
component in another repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from runtime.devtools.demo.api import DemoApi
from runtime.devtools.localplatform.flow import load_flow
from runtime.worker.settings import Settings
from tests.helpers import ROOT, run_cli


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("authoring") / "acme-records"
    result = run_cli("new", str(target), "--name", "Acme Records")
    assert result.returncode == 0, result.stderr
    assert "wrote 21 files" in result.stdout
    return target


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_the_generated_component_validates_and_its_tests_pass_as_written(generated):
    validate = run_cli("validate", cwd=generated)
    assert validate.returncode == 0, validate.stderr
    assert "1 trigger(s), 1 action(s)" in validate.stdout
    # The fixtures come from the runtime's pytest plugin (an entry point): no conftest.py.
    assert not (generated / "tests" / "conftest.py").exists()
    tests = python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=generated)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "8 passed" in tests.stdout


def test_its_action_runs_with_exec_against_a_signed_in_provider(generated, tmp_path):
    provider = DemoApi().start()
    try:
        store = tmp_path / "credentials.json"
        signed = run_cli("auth", "demo", provider.url, "--credentials", str(store))
        assert signed.returncode == 0, signed.stderr
        result = run_cli(
            "exec", "getRecord", "--msg", "examples/get-record.json",
            "--credentials", str(store), "--credential", "demo", cwd=generated,
        )  # fmt: skip
    finally:
        provider.stop()
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["data", "end"]
    assert events[0]["payload"]["body"]["name"] == "Record 3"


def test_its_project_files_install_and_wire_the_worker_as_the_platform_does(generated, tmp_path):
    built = python(
        "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", str(tmp_path), str(generated), cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("acme_records-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA")))
    assert b"Requires-Dist: eio-python-runtime" in metadata

    compose = yaml.safe_load((generated / "docker-compose.yml").read_text())
    flow = load_flow(generated / "flows" / "get-record.json")
    environment = {k: str(v) for k, v in compose["services"]["worker"]["environment"].items()}
    assert environment["ELASTICIO_FUNCTION"] == flow.function == "getRecord"
    assert environment["ELASTICIO_LISTEN_MESSAGES_ON"] == flow.messages_queue
    Settings.from_env(environment)  # a complete, valid worker environment
    assert "--sign-in-demo" in compose["services"]["platform"]["command"]
    dockerfile = (generated / "Dockerfile").read_text()
    assert "python -m runtime validate" in " ".join(dockerfile.split())
    readme = (generated / "README.md").read_text()
    assert "scripts/try" in readme and "scripts/check" in readme
    for script in ("check", "try"):
        assert (generated / "scripts" / script).stat().st_mode & 0o111


def test_new_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("new", str(tmp_path))
    assert result.returncode == 2
    assert "exists and is not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_the_runtime_is_a_package_of_its_own(tmp_path):
    built = python(
        "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", str(tmp_path), str(ROOT), cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(next(tmp_path.glob("eio_python_runtime-*.whl"))) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert b"eio-runtime = runtime.cli:main" in entry_points
    assert b"[pytest11]" in entry_points and b"runtime.pytest_plugin" in entry_points
    assert "runtime/devtools/scaffold/template/component.json.tmpl" in names
    # the REST connector of this repository is not part of the runtime
    assert not [n for n in names if n.startswith(("lib/", "verifyCredentials"))]
