"""The long-running local commands stop at once on SIGTERM or Ctrl-C, with exit code 0:
the local platform, its tail, and the demo API (a container's stop waits for exactly this)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from runtime.devtools.localplatform import topology
from runtime.devtools.localplatform.flow import load_flow
from runtime.worker.amqp import AdminClient
from tests.helpers import ROOT

KILLED_AFTER = 10.0
"""How long ``docker stop`` waits before SIGKILL: a command that exits 0 within it honoured
the signal (a killed one reports -9). The seconds it took are no assertion: a loaded
machine may take longer without anything being wrong."""


class Command:
    """``python -m runtime ...`` as a user starts it; its output read as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} in the output:\n{''.join(self.lines)}")

    def stop_with(self, number: int) -> int:
        """Send the signal; the exit code, or TimeoutExpired past docker's grace period."""
        self.process.send_signal(number)
        try:
            code = self.process.wait(timeout=KILLED_AFTER)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.fixture
def flow_file(tmp_path: Path, amqp_url: str):
    flow_id = f"t-stop-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "flow.json"
    path.write_text(json.dumps({"flowId": flow_id, "function": "work", "amqpUrl": amqp_url}))
    yield path
    with AdminClient(amqp_url, name="test") as admin:
        topology.remove(load_flow(path), admin)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_the_local_platform_stops_at_once(flow_file, number):
    command = Command("platform", "up", "--flow", str(flow_file), "--port", "0")
    command.wait_for("# local platform API on")
    code = command.stop_with(number)
    assert code == 0, "".join(command.lines)
    assert "Traceback" not in "".join(command.lines)


def test_tail_stops_at_once(flow_file):
    with AdminClient(load_flow(flow_file).amqp_url, name="test") as admin:
        topology.declare(load_flow(flow_file), admin)
    command = Command("platform", "tail", "--flow", str(flow_file))
    command.wait_for("# following the events of")
    code = command.stop_with(signal.SIGTERM)
    assert code == 0, "".join(command.lines)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_api_stops_at_once(number):
    command = Command("demo-api", "--host", "127.0.0.1", "--port", "0")
    command.wait_for("demo API on")
    code = command.stop_with(number)
    assert code == 0, "".join(command.lines)
