"""The local platform: topology (rebounds really come back), API, credentials file, CLI."""

from __future__ import annotations

import json
import re

from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.devtools.localplatform.platform import LocalPlatform
from tests.helpers import ROOT, run_cli


def test_a_rebound_comes_back_after_its_expiration(step, tmp_path):
    harness = step(
        "reboundOnce",
        config={"marker": str(tmp_path / "m")},
        env={"ELASTICIO_REBOUND_INITIAL_EXPIRATION": "700"},
    )
    harness.start_worker()
    harness.send({"n": 1})
    [out] = harness.take("message", timeout=20)
    body = out["payload"]["body"]
    assert body["back_at"] - body["rebounded_at"] >= 0.6
    assert harness.empty("error")


def test_local_platform_serves_step_data_and_saves_keys(amqp_url, tmp_path):
    store = CredentialsFile(tmp_path / "credentials.json")
    store.path.write_text(json.dumps({"shop": {"type": "api_key", "key": "k-original-1"}}))
    flow = FlowSpec.model_validate(
        {
            "flowId": "lp-test",
            "function": "keys",
            "credential": "shop",
            "config": {"extra": 1},
            "amqpUrl": amqp_url,
        }
    )
    platform = LocalPlatform([flow], credentials=store).start()
    try:
        import requests

        auth = (flow.api_username, flow.api_key)
        data = requests.get(
            f"{platform.api_url}/v1/tasks/lp-test/steps/step_1", auth=auth, timeout=5
        ).json()
        assert data["config"] == {
            "type": "api_key",
            "key": "k-original-1",
            "extra": 1,
            "_account": "shop",
        }
        requests.put(
            f"{platform.api_url}/v1/accounts/shop",
            auth=auth,
            timeout=5,
            json={"keys": {"type": "api_key", "key": "k-rotated-2"}},
        )
        assert store.entry("shop")["key"] == "k-rotated-2"
        data = requests.get(
            f"{platform.api_url}/v1/tasks/lp-test/steps/step_1", auth=auth, timeout=5
        ).json()
        assert data["config"]["key"] == "k-rotated-2"
        assert (
            requests.get(f"{platform.api_url}/v1/tasks/lp-test/steps/step_1", timeout=5).status_code
            == 401
        )
    finally:
        platform.stop(remove_topology=True)


def test_send_and_tail_from_the_command_line(step, tmp_path, amqp_url):
    harness = step("work")
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(
        json.dumps(
            {
                "flowId": harness.flow.flow_id,
                "function": "work",
                "amqpUrl": amqp_url,
            }
        )
    )
    harness.start_worker()
    sent = run_cli(
        "platform", "send", "--flow", str(flow_file), "-", stdin='[{"a": 1}, {"body": {"a": 2}}]'
    )
    assert sent.returncode == 0, sent.stderr
    assert len(sent.stdout.splitlines()) == 2
    tail = run_cli("platform", "tail", "--flow", str(flow_file), "--count", "2", "--timeout", "20")
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert sorted(e["payload"]["body"]["a"] for e in events) == [1, 2]
    assert {e["event"] for e in events} == {"data"}


def test_env_prints_what_the_worker_needs(tmp_path):
    flow_file = tmp_path / "flow.json"
    flow_file.write_text('{"flowId": "f1", "function": "httpRequest"}')
    result = run_cli("platform", "env", "--flow", str(flow_file), "--api-uri", "http://api:9")
    lines = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert lines["ELASTICIO_FUNCTION"] == "httpRequest"
    assert lines["ELASTICIO_API_URI"] == "http://api:9"
    assert lines["ELASTICIO_LISTEN_MESSAGES_ON"] == "f1:step_1:messages"
    lock = lines["ELASTICIO_CREDENTIAL_LOCK_URL"]  # every replica refreshes under it
    assert lock.startswith("file:///") and lock.endswith("runtime-credential-locks")
    shared = run_cli(
        "platform", "env", "--flow", str(flow_file), "--lock-url", "redis://redis:6379/0"
    ).stdout
    assert "export ELASTICIO_CREDENTIAL_LOCK_URL=redis://redis:6379/0" in shared.splitlines()


def test_a_flow_file_with_an_unknown_field_is_a_clear_error(tmp_path):
    flow_file = tmp_path / "flow.json"
    flow_file.write_text('{"function": "x", "functon": "typo"}')
    result = run_cli("platform", "env", "--flow", str(flow_file))
    assert result.returncode == 2
    assert "functon: Extra inputs are not permitted" in result.stderr


def test_the_demo_runs_end_to_end(amqp_url, demo_node_step):
    result = run_cli("demo", "--amqp-url", amqp_url, cwd=ROOT, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary = next(line for line in lines if line.get("demo") in ("done", "incomplete"))
    assert summary.pop("snapshots") >= 1  # one per page with records
    expiries = summary.pop("expiries met")
    assert expiries >= 3  # every round of webhook calls met an expired token
    assert summary == {
        "demo": "done",
        "requests": 9,
        "requests answered": 9,
        "records polled": 25,
        "records fetched": 25,
        "errors": 0,
        "per step": {"poll/httpRequest": 25, "poll/pollRecords": 25,
                     "webhook/httpRequestAxios": 9, "webhook/reply": 9},
        "token refreshes": expiries,  # one per expiry, not one per replica
        "invalid_grant": 0,
        "grants alive": True,
    }  # fmt: skip
    answers = [line for line in lines if line.get("demo") == "answer"]
    assert sorted(a["id"] for a in answers) == list(range(1, 10))
    assert all(a["status"] == 200 and a["body"]["record"]["id"] == a["id"] for a in answers)
    took_theirs = {line["worker"] for line in lines if line.get("msg") == "credential_reloaded"}
    # the replicas shared the refresh: some took another's new token (this run's flow id is
    # the file's with a suffix of its own)
    assert any(re.fullmatch(r"demo-records-webhook-\w+/step_2/[123]", w) for w in took_theirs)


def test_the_demo_says_what_to_do_without_a_broker():
    result = run_cli("demo", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/", timeout=15)
    assert result.returncode == 1
    assert "No RabbitMQ answers at amqp://guest:guest@127.0.0.1:1/" in result.stderr
    assert "rabbitmq-server -detached" in result.stderr
    assert "docker compose up" in result.stderr
