"""A whole flow on the real broker, as a user runs it: ``platform up --flow FLOW.json`` with
the platform's flow JSON; it routes between the steps and starts their workers (ours and the
Node.js sailor side by side)."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.devtools.localplatform import messaging, topology
from runtime.devtools.localplatform.graph_files import load_graph
from runtime.worker.amqp import AdminClient
from tests.helpers import FIXTURES, ROOT, run_cli, wait_for

THREE = FIXTURES / "flows" / "three-steps.json"
MESSAGES = 30


class PlatformUp:
    """``python -m runtime platform up`` for one flow file; its output collected."""

    def __init__(self, flow_file: Path, amqp_url: str, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "platform", "up", "--flow", str(flow_file),
             "--port", "0", "--amqp-url", amqp_url, *extra],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.flow_file = flow_file
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout or ():
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(90)
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def flow_copy(tmp_path: Path, edit: Callable[[dict], None] | None, **local: Any) -> Path:
    """The fixture flow under an id of the test's own, its components' paths absolute."""
    data = json.loads(THREE.read_text())
    if edit is not None:
        edit(data["data"]["attributes"]["graph"])
    data["local"]["flowId"] = f"t-{uuid.uuid4().hex[:10]}"
    for component in data["local"]["components"].values():
        component["path"] = str((THREE.parent / component["path"]).resolve())
    data["local"].update(local)
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def whole_flow(tmp_path, amqp_url, node_sailor):
    started: list[tuple[PlatformUp, Path]] = []

    def start(edit: Callable[[dict], None] | None = None, **local: Any) -> tuple[PlatformUp, Any]:
        path = flow_copy(tmp_path, edit, **local)
        up = PlatformUp(path, amqp_url, "--data", str(tmp_path / "data"))
        started.append((up, path))
        return up, load_graph(path)

    yield start
    for up, path in started:
        up.stop()
        flow = load_graph(path)
        with AdminClient(amqp_url, name="test") as admin:
            for step in flow.steps().values():
                topology.remove(step, admin)


def ready(up: PlatformUp, workers: int) -> None:
    wait_for(lambda: up.count("worker_ready") + up.count("Fully initialized") >= workers,
             timeout=60, what=f"{workers} workers ready:\n{up.text[-3000:]}")  # fmt: skip


def take(admin: AdminClient, step, kind: str, count: int, timeout: float = 60) -> list[dict]:
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        got = admin.get(step.output_queue(kind))
        if got is None:
            time.sleep(0.02)
            continue
        found.append(messaging.read(step, kind, *got))
    return found


def test_a_three_step_flow_of_python_and_nodejs_carries_each_message_once_mapped(
    whole_flow, amqp_url
):
    up, flow = whole_flow()
    steps = flow.steps()
    ready(up, 3)
    threads = {}
    with AdminClient(amqp_url, name="test") as admin:
        for n in range(MESSAGES):
            thread = str(uuid.uuid4())
            threads[thread] = n
            messaging.send(steps["step_1"], admin, {"n": n}, headers={"threadId": thread})
        outputs = take(admin, steps["step_3"], "message", MESSAGES)
        assert take(admin, steps["step_3"], "message", 1, timeout=1) == []  # nothing twice
        errors = [take(admin, s, "error", 1, timeout=0.2) for s in steps.values()]

    assert [e for e in errors if e] == []
    assert len(outputs) == MESSAGES, up.text[-3000:]
    by_thread = {o["headers"]["threadId"]: o["payload"]["body"] for o in outputs}
    assert set(by_thread) == set(threads)  # each execution kept its thread
    for thread, body in by_thread.items():
        n = threads[thread]
        assert body == {"n": n, "doubled": 2 * n, "label": f"#{n}", "meta": {"first": n}}
    for output in outputs:  # the last step saw the Node.js step as the one before it
        assert output["headers"]["stepId"] == "step_3"
        assert output["headers"]["taskId"] == flow.id
    assert "[step_2/1]" in up.text and "[step_1/1]" in up.text  # prefixed worker lines

    # platform tail --flow: each execution's events across the steps, tied by threadId
    # (the first two steps' data is still queued for it; the test read the last step's)
    tail = run_cli("platform", "tail", "--flow", str(up.flow_file), "--amqp-url", amqp_url,
                   "--count", str(2 * MESSAGES), "--timeout", "30")  # fmt: skip
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(events) == 2 * MESSAGES, tail.stderr
    for thread in threads:
        mine = [e for e in events if e["thread"] == thread]
        assert sorted(e["step"] for e in mine) == ["step_1", "step_2"]
        assert all(e["event"] == "data" and e["ms"] >= 0 for e in mine)
    assert up.stop() == 0  # SIGTERM: every worker stopped, then the platform, exit 0
    assert up.count('"stopped"') >= 2  # each of our two workers said so (not the sailor)


def test_fan_out_delivers_to_both_successors_and_a_mapper_error_names_the_edge(
    whole_flow, amqp_url
):
    # step_1 -> step_2 (Node.js) and step_1 -> step_3 directly, whose mapper fails on n == 3
    def fan_out(graph: dict) -> None:
        graph["edges"][1] = {
            "id": "fan:step_1:step_3", "source": "step_1", "target": "step_3",
            "config": {"mapper": {"inverse": "n = 3 ? $number('three') : 1 / n"}},
        }  # fmt: skip

    up, flow = whole_flow(fan_out)
    steps = flow.steps()
    ready(up, 3)
    with AdminClient(amqp_url, name="test") as admin:
        for n in range(1, 6):
            messaging.send(steps["step_1"], admin, {"n": n})
        to_node = take(admin, steps["step_2"], "message", 5)
        to_three = take(admin, steps["step_3"], "message", 4)
        [error] = take(admin, steps["step_3"], "error", 1)
    assert sorted(o["payload"]["body"]["n"] for o in to_node) == [1, 2, 3, 4, 5]
    assert sorted(o["payload"]["body"]["inverse"] for o in to_three) == [1 / 5, 1 / 4, 1 / 2, 1]
    message = error["payload"]["error"]["message"]
    assert "edge fan:step_1:step_3" in message and "$number('three')" in message
    assert error["payload"]["errorInput"]["body"] == {"n": 3}


def test_a_worker_killed_mid_flow_is_restarted_and_no_message_is_lost(whole_flow, amqp_url):
    up, flow = whole_flow(replicas={"step_3": 1})
    steps = flow.steps()
    ready(up, 3)
    with AdminClient(amqp_url, name="test") as admin:
        for n in range(MESSAGES):
            messaging.send(steps["step_1"], admin, {"n": n, "sleep": 0.05})
        first = take(admin, steps["step_3"], "message", 3)
        pid = next(
            json.loads(line.split("] ", 1)[1] if "] " in line else line)["pid"]
            for line in up.lines
            if '"worker_started"' in line and '"step_3"' in line
        )
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: up.count("worker_exited") >= 1, what="the supervisor saw the exit")
        wait_for(lambda: up.count("worker_started") >= 4, what="step_3 started again")
        seen = {o["payload"]["body"]["n"] for o in first}
        deadline = time.monotonic() + 90
        while seen != set(range(MESSAGES)) and time.monotonic() < deadline:
            # a message whose data was published just before the kill comes out again
            seen |= {
                o["payload"]["body"]["n"] for o in take(admin, steps["step_3"], "message", 1, 1)
            }
    assert seen == set(range(MESSAGES)), up.text[-3000:]


def test_the_routers_connections_killed_mid_stream_lose_and_double_nothing(
    whole_flow, amqp_url, broker_control
):
    """The router's connections closed under it by the broker, three times while data
    flows: what it had not committed is redelivered to it once it is back."""
    count = 300

    def both_mapped(graph: dict) -> None:
        graph["edges"][1]["config"]["mapper"] = "$"  # the body as it is, through the router

    up, flow = whole_flow(both_mapped)
    steps = flow.steps()
    ready(up, 3)
    seen: list[dict] = []
    closed = 0

    def close_a_router_connection() -> bool:
        node = ("step_1", "step_2")[closed % 2]
        name = f"{socket.gethostname()}-router-{flow.id}-{node}"
        return broker_control.close_connections_named(name, "test: killed") > 0

    with AdminClient(amqp_url, name="test") as admin:
        for n in range(count):
            messaging.send(steps["step_1"], admin, {"n": n})
        deadline = time.monotonic() + 120
        while len(seen) < count and time.monotonic() < deadline:
            seen += take(admin, steps["step_3"], "message", 1, timeout=1)
            if len(seen) in (20, 80, 160, 220) and closed < 4:
                wait_for(close_a_router_connection, what="a router connection to close")
                closed += 1
        seen += take(admin, steps["step_3"], "message", 1, timeout=2)  # one too many?
    assert up.count("router_reconnecting") >= 4
    numbers = collections.Counter(o["payload"]["body"]["n"] for o in seen)
    assert set(numbers) == set(range(count)), up.text[-3000:]  # nothing lost
    assert [n for n, times in numbers.items() if times > 1] == []  # nothing doubled


def test_no_worker_outlives_a_platform_killed_with_sigkill(whole_flow):
    up, _flow = whole_flow()
    ready(up, 3)
    pids = [json.loads(line)["pid"] for line in up.lines if '"worker_started"' in line]
    assert len(pids) == 3
    up.process.kill()
    up.process.wait(10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone too: exited, waiting for its parent (init) to reap it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"

    wait_for(lambda: all(gone(pid) for pid in pids), timeout=30, what="every worker ended")
