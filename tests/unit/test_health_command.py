"""``python -m runtime health``, as a container engine runs it: against the worker's real
probe server, a port nobody serves, a server that trickles, and the health file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from runtime.worker.probes import Probes, ProbeServer
from tests.helpers import ROOT, finishes


def health(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "health", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def probes():
    verdicts = {"live": None, "ready": "starting"}
    probes = Probes(live=lambda: verdicts["live"], ready=lambda: verdicts["ready"])
    server = ProbeServer(0, CollectorRegistry(), probes).start()
    yield server.port, verdicts
    server.close()


def test_it_says_what_the_workers_probe_says(probes):
    port, verdicts = probes
    starting = health(ELASTICIO_METRICS_PORT=str(port))
    assert (starting.returncode, starting.stdout) == (1, "unhealthy: starting\n")
    verdicts["ready"] = None
    assert health(ELASTICIO_METRICS_PORT=str(port)).returncode == 0
    verdicts["live"] = "the AMQP I/O loop is not turning; restart the worker"
    live = health("--probe", "live", ELASTICIO_METRICS_PORT=str(port))
    assert live.returncode == 1
    assert "the AMQP I/O loop is not turning" in live.stdout


def test_a_port_nobody_serves_is_unhealthy_and_says_where():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    answer = health(ELASTICIO_METRICS_PORT=str(port))
    assert answer.returncode == 1
    assert f"no answer from http://127.0.0.1:{port}/readyz" in answer.stdout


def test_a_probe_that_trickles_fails_within_its_bound_for_the_whole_answer():
    from runtime.health import ask_probe

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        connection.recv(1024)
        connection.sendall(b"HTTP/1.0 200 OK\r\n")
        while not stop.wait(0.05):
            connection.sendall(b"X-Slow: y\r\n")
        connection.close()

    threading.Thread(target=trickle, daemon=True).start()
    # The server trickles for ever: the probe ending at all is its own deadline at work (the
    # bound below only keeps a hang from stalling the suite).
    ended = finishes(lambda: ask_probe(listener.getsockname()[1], "ready", timeout=0.5), 30)
    stop.set()
    listener.close()
    assert ended.error is None
    ok, why = ended.value
    assert not ok
    assert "within 0.5 s" in why


def test_without_a_port_the_health_file_decides(tmp_path):
    path = tmp_path / "worker.health"
    assert health(ELASTICIO_HEALTH_FILE=str(path)).returncode == 1
    path.touch()
    assert health(ELASTICIO_HEALTH_FILE=str(path)).returncode == 0
    old = time.time() - 60
    os.utime(path, (old, old))
    assert health("--max-age", "30", ELASTICIO_HEALTH_FILE=str(path)).returncode == 1


def test_the_probe_imports_none_of_the_runtimes_heavy_parts():
    """It runs every few seconds in every container: no aiohttp, pika, pydantic, structlog,
    requests, nor the runtime's own modules past the package and the probe."""
    script = (
        "import runpy, sys, json\n"
        "sys.argv = ['runtime', 'health']\n"
        "try:\n"
        "    runpy.run_module('runtime', run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT), "ELASTICIO_METRICS_PORT": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    modules = set(json.loads(loaded.stdout.splitlines()[-1]))
    heavy = {"aiohttp", "pika", "pydantic", "structlog", "requests", "prometheus_client"}
    assert not modules & heavy
    ours = {m for m in modules if m.startswith("runtime.")}
    assert ours <= {"runtime.health", "runtime.__main__"}


def test_the_package_still_hands_authors_every_public_name_on_first_use():
    found = subprocess.run(
        [sys.executable, "-c", "import runtime; print(runtime.Context.__module__)"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert found.stdout.strip() == "runtime.step.context"
    import runtime

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = runtime.Nope  # type: ignore[attr-defined]
