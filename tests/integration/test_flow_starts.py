"""How whole flows start on the local platform: a webhook (with request-reply) and a schedule,
each run as a user runs it (``platform up --flow``) against the real broker and real workers."""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from runtime.devtools.localplatform import topology
from runtime.devtools.localplatform.graph_files import load_graph
from runtime.devtools.localplatform.webhooks import reply_queue
from runtime.worker.amqp import AdminClient
from tests.helpers import FIXTURES, run_cli, wait_for
from tests.integration.test_whole_flow import PlatformUp, ready, take

FLOWSTEPS = str(FIXTURES / "flowsteps")


def write_flow(tmp_path: Path, nodes: list[dict], **local: Any) -> Path:
    edges = [
        {"source": a["id"], "target": b["id"], "config": {"mapper": None}}
        for a, b in itertools.pairwise(nodes)
    ]
    flow = {
        "data": {"id": f"t-{uuid.uuid4().hex[:10]}",
                 "attributes": {"type": "ordinary", "graph": {"nodes": nodes, "edges": edges}}},
        "local": {"components": {"local/flowsteps": {"path": FLOWSTEPS}}, **local},
    }  # fmt: skip
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(flow))
    return path


@pytest.fixture
def platform_up(amqp_url):
    started: list[tuple[PlatformUp, Path]] = []

    def start(path: Path, workers: int, data: Path | None = None) -> tuple[PlatformUp, str, Any]:
        up = PlatformUp(path, amqp_url, "--data", str(data or path.parent / "data"))
        started.append((up, path))
        wait_for(lambda: "local platform API on" in up.text, timeout=30, what=up.text[-2000:])
        url = re.search(r"local platform API on (\S+);", up.text)
        assert url is not None
        ready(up, workers)
        return up, url.group(1).rstrip(";"), load_graph(path)

    yield start
    for up, path in started:
        assert up.stop() == 0, up.text[-2000:]
        flow = load_graph(path)
        with AdminClient(amqp_url, name="test") as admin:
            for step in flow.steps().values():
                topology.remove(step, admin)
            admin.delete_queue(reply_queue(flow))


WEBHOOK = {"id": "step_1", "command": "elasticio/webhook:receive"}


def test_a_request_reply_flow_answers_with_the_reply_steps_status_headers_and_body(
    tmp_path, platform_up
):
    path = write_flow(tmp_path, [WEBHOOK, {"id": "step_2", "command": "local/flowsteps:reply"}],
                      requestReply=True)  # fmt: skip
    _up, url, flow = platform_up(path, 1)
    answer = requests.post(f"{url}/hook/{flow.id}/orders/7?x=1", json={"order": 7}, timeout=30)
    assert answer.status_code == 202
    assert answer.headers["X-A"] == "1"
    accepted = answer.json()["accepted"]
    assert accepted == {"order": 7}

    assert requests.head(f"{url}/hook/{flow.id}", timeout=10).status_code == 200
    assert requests.head(f"{url}/hook/no-such-flow", timeout=10).status_code == 404
    missing = requests.post(f"{url}/hook/no-such-flow", json={}, timeout=10)
    assert missing.status_code == 404 and "no running flow no-such-flow" in missing.json()["error"]
    too_big = requests.post(f"{url}/hook/{flow.id}", data=b"x" * (10 * 1024 * 1024 + 1),
                            timeout=30)  # fmt: skip
    assert too_big.status_code == 413


def test_concurrent_webhook_calls_each_get_their_own_reply(tmp_path, platform_up):
    path = write_flow(tmp_path, [WEBHOOK, {"id": "step_2", "command": "local/flowsteps:reply"}],
                      requestReply=True, replicas={"step_2": 2})  # fmt: skip
    _up, url, flow = platform_up(path, 2)

    def call(n: int) -> tuple[int, Any]:
        answer = requests.put(f"{url}/hook/{flow.id}", json={"n": n}, timeout=30)
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(40)))
    assert answers == [(202, {"accepted": {"n": n}}) for n in range(40)]


def test_a_reply_that_never_comes_is_a_504_and_an_error_a_500(tmp_path, platform_up):
    silent = write_flow(tmp_path, [WEBHOOK, {"id": "step_2", "command": "local/flowsteps:work"}],
                        requestReply=True, replyTimeout=1)  # fmt: skip
    failing = write_flow(tmp_path, [WEBHOOK, {"id": "step_2", "command": "local/flowsteps:fail"}],
                         requestReply=True)  # fmt: skip
    _up, url, flow = platform_up(silent, 1)
    started = time.monotonic()
    answer = requests.post(f"{url}/hook/{flow.id}", json={"sleep": 0}, timeout=30)
    took = time.monotonic() - started
    assert answer.status_code == 504 and "sent no reply within 1 s" in answer.json()["error"]
    assert took >= 1  # it waited the reply timeout out (a floor: load cannot make it flake)

    _up2, url2, flow2 = platform_up(failing, 1)
    answer = requests.post(f"{url2}/hook/{flow2.id}", json={"a": 1}, timeout=30)
    assert answer.status_code == 500
    assert "cannot handle {'a': 1}" in answer.json()["error"]


def test_a_webhook_flow_without_request_reply_answers_at_once_and_runs(
    tmp_path, platform_up, amqp_url
):
    path = write_flow(tmp_path, [WEBHOOK, {"id": "step_2", "command": "local/flowsteps:echo"}])
    _up, url, flow = platform_up(path, 1)
    answer = requests.post(f"{url}/hook/{flow.id}/more/path?q=1", data="plain text",
                           headers={"X-Caller": "test"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200
    request_id = answer.json()["requestId"]
    assert answer.json()["message"] == "thank you"
    with AdminClient(amqp_url, name="test") as admin:
        [out] = take(admin, flow.steps()["step_2"], "message", 1)
    message = out["payload"]["body"]
    assert message["body"] == "plain text"
    assert message["method"] == "POST"
    assert message["query"] == {"q": "1"}
    assert message["additionalUrlPath"] == "more/path"
    assert message["originalUrl"] == f"/hook/{flow.id}/more/path?q=1"
    assert message["url"] == f"{url}/hook/{flow.id}/more/path?q=1"
    assert message["headers"]["x-caller"] == "test"
    assert out["headers"]["threadId"] == request_id


def counting_flow(tmp_path: Path, every: str) -> Path:
    """A polling flow whose trigger counts its runs in its snapshot, then a step of ours."""
    return write_flow(
        tmp_path,
        [{"id": "step_1", "command": "local/flowsteps:countTicks"},
         {"id": "step_2", "command": "local/flowsteps:work"}],
        every=every,
    )  # fmt: skip


def test_two_ticks_of_a_schedule_start_two_executions_and_the_snapshot_carries_over(
    tmp_path, platform_up, amqp_url
):
    path = counting_flow(tmp_path, every="1s")
    up, _url, flow = platform_up(path, 2)
    with AdminClient(amqp_url, name="test") as admin:
        outputs = take(admin, flow.steps()["step_2"], "message", 2, timeout=30)
    assert [o["payload"]["body"] for o in outputs] == [{"count": 1}, {"count": 2}]
    assert outputs[0]["headers"]["threadId"] != outputs[1]["headers"]["threadId"]
    assert up.count('"flow_started"') >= 2
    assert up.stop() == 0

    # the platform kept the snapshot in its data folder: a new run goes on from it
    with AdminClient(amqp_url, name="test") as admin:
        before = [*outputs, *take(admin, flow.steps()["step_2"], "message", 100, timeout=2)]
        last = max(o["payload"]["body"]["count"] for o in before)
        platform_up(path, 2)
        [later] = take(admin, flow.steps()["step_2"], "message", 1, timeout=30)
    assert later["payload"]["body"] == {"count": last + 1}


def test_platform_trigger_starts_one_execution_now(tmp_path, platform_up, amqp_url):
    path = counting_flow(tmp_path, every="1h")
    up, _url, flow = platform_up(path, 2)
    for _ in range(2):
        started = run_cli("platform", "trigger", "--flow", str(path), "--amqp-url", amqp_url)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["flow"] == flow.id
    with AdminClient(amqp_url, name="test") as admin:
        outputs = take(admin, flow.steps()["step_2"], "message", 2, timeout=30)
    assert [o["payload"]["body"] for o in outputs] == [{"count": 1}, {"count": 2}]
    assert "started every 1h" in up.text

    action_first = write_flow(tmp_path, [{"id": "step_1", "command": "local/flowsteps:work"}])
    refused = run_cli("platform", "trigger", "--flow", str(action_first), "--amqp-url", amqp_url)
    assert refused.returncode != 0
    assert "'trigger' starts a whole flow that polls" in refused.stderr


def test_a_flow_exported_from_the_platforms_api_validates_and_runs(tmp_path, platform_up, amqp_url):
    """The flows API's own example (PetStore to Email), as GET /v2/flows/{id} returns it,
    with a local section naming stand-ins for its two components."""
    data = json.loads((FIXTURES / "flows" / "platform-export.json").read_text())
    data["local"]["flowId"] = f"t-{uuid.uuid4().hex[:10]}"
    for component in data["local"]["components"].values():
        component["path"] = str((FIXTURES / "flows" / component["path"]).resolve())
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data))
    assert run_cli("platform", "validate", str(path)).returncode == 0
    up, _url, flow = platform_up(path, 1)  # step_1 logs at warn (nodes_config): not its start
    assert "started on cron '*/3 * * * *' (UTC)" in up.text
    assert (
        run_cli("platform", "trigger", "--flow", str(path), "--amqp-url", amqp_url).returncode == 0
    )
    with AdminClient(amqp_url, name="test") as admin:
        sent = take(admin, flow.steps()["step_2"], "message", 2, timeout=30)
    assert sorted(s["payload"]["body"]["sent"]["textBody"] for s in sent) == ["Nemofish", "Rexdog"]
    assert {s["payload"]["body"]["sent"]["to"] for s in sent} == {"foo@example.com"}
