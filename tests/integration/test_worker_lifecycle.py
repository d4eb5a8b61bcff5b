"""Start-up, hooks, settings, shutdown and exit codes of ``python -m runtime run``."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.helpers import wait_for
from tests.integration.conftest import WorkerProcess


def test_missing_and_malformed_settings_exit_2_with_one_message(step, tmp_path):
    harness = step("work")
    env = harness.env(ELASTICIO_STARTUP_REQUIRED="maybe", ELASTICIO_PROTOCOL_VERSION="7")
    del env["ELASTICIO_FLOW_ID"], env["ELASTICIO_MESSAGE_CRYPTO_IV"]
    worker = WorkerProcess(env, cwd=harness.component)
    assert worker.wait() == 2
    text = worker.text
    assert "missing required variables: ELASTICIO_FLOW_ID, ELASTICIO_MESSAGE_CRYPTO_IV" in text
    assert "ELASTICIO_STARTUP_REQUIRED='maybe' is not a boolean" in text
    assert "ELASTICIO_PROTOCOL_VERSION='7' is not one of 1, 2" in text
    assert "Traceback" not in text
    assert harness.env()["ELASTICIO_MESSAGE_CRYPTO_PASSWORD"] not in text


def test_a_broken_component_exits_2_after_reporting(step, tmp_path):
    (tmp_path / "component.json").write_text('{"title": "x", "actions": {"work": {}}}')
    harness = step("work", component=tmp_path)
    worker = harness.start_worker(wait=False)
    assert worker.wait() == 2
    assert "$.actions.work.main: is required" in worker.text
    [error] = harness.take("error")
    assert "$.actions.work.main" in error["payload"]["error"]["message"]


def test_a_missing_queue_fails_start_up_clearly(step):
    harness = step("work")
    worker = harness.start_worker(
        wait=False, ELASTICIO_LISTEN_MESSAGES_ON="no-such-queue-for-this-test"
    )
    assert worker.wait() == 1
    assert "queue 'no-such-queue-for-this-test' does not exist" in worker.text


def test_an_unreachable_broker_fails_start_up_clearly(step):
    harness = step("work")
    worker = harness.start_worker(
        wait=False,
        ELASTICIO_AMQP_URI="amqp://guest:guest@127.0.0.1:1/",
        ELASTICIO_AMQP_RECONNECT_ATTEMPTS="1",
    )
    assert worker.wait() == 1
    assert "cannot connect to the broker at 127.0.0.1:1" in worker.text


def test_wrong_broker_credentials_say_so(step):
    harness = step("work")
    worker = harness.start_worker(
        wait=False,
        ELASTICIO_AMQP_URI="amqp://guest:not-the-password@127.0.0.1:5672/",
        ELASTICIO_AMQP_RECONNECT_ATTEMPTS="0",
    )
    assert worker.wait() == 1
    assert "refused the user name or password" in worker.text
    assert "not-the-password" not in worker.text


def test_init_failure_is_published_as_an_error_and_exits_1(step):
    harness = step("hooked", config={"failInit": True})
    worker = harness.start_worker(wait=False)
    assert worker.wait() == 1
    [error] = harness.take("error")
    assert error["payload"]["error"]["message"] == "init refused: failInit is set"
    assert error["payload"]["errorInput"] is None
    assert set(error["headers"]) >= {"execId", "taskId", "stepId", "compId", "function"}


def test_init_hook_runs_before_consuming(step, tmp_path):
    marker = tmp_path / "marker.txt"
    harness = step("hooked", config={"marker": str(marker)})
    harness.start_worker()
    assert marker.read_text() == "init\n"


def test_startup_hook_data_is_stored_and_rewritten_on_conflict(step, platform_api, tmp_path):
    marker = str(tmp_path / "m.txt")
    harness = step("hooked", config={"marker": marker})
    platform_api.state.hooks[harness.flow.flow_id] = {"stale": True}
    harness.start_worker(ELASTICIO_STARTUP_REQUIRED="1")
    assert platform_api.state.hooks[harness.flow.flow_id] == {"startedWith": marker}
    calls = [c for c in platform_api.state.calls if "/hooks/" in c[1]]
    assert [m for m, _ in calls] == ["POST", "DELETE", "POST"]


def test_shutdown_hook_mode(step, platform_api, tmp_path):
    marker = tmp_path / "shutdown.json"
    harness = step("hooked", config={"marker": str(marker)})
    platform_api.state.hooks[harness.flow.flow_id] = {"from": "startup"}
    env = harness.env(ELASTICIO_HOOK_SHUTDOWN="true")
    for name in ("ELASTICIO_AMQP_URI", "ELASTICIO_LISTEN_MESSAGES_ON"):
        del env[name]  # not needed in this mode
    worker = WorkerProcess(env, cwd=harness.component)
    assert worker.wait() == 0, worker.text
    assert json.loads(marker.read_text()) == {"shutdown": {"from": "startup"}}
    assert harness.flow.flow_id not in platform_api.state.hooks


def test_sigterm_during_a_slow_message_finishes_it_first(step):
    harness = step("work")
    worker = harness.start_worker()
    harness.send({"sleep": 1.5, "n": 1})
    wait_for(lambda: harness.queued() == 0)  # the worker has taken it
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stopping")
    worker.signal(signal.SIGTERM)  # a second signal loses nothing either
    assert worker.wait() == 0
    [out] = harness.take("message", timeout=1)
    assert out["payload"]["body"]["n"] == 1
    assert harness.queued() == 0
    assert "already_stopping" in worker.text


def test_after_sigterm_the_next_message_stays_in_the_queue(step):
    harness = step("work")
    worker = harness.start_worker()
    harness.send({"sleep": 1.0, "n": 1})
    harness.send({"sleep": 1.0, "n": 2})
    wait_for(lambda: harness.queued() == 1)  # the first taken, the second waiting
    worker.signal()
    assert worker.wait() == 0
    outputs = harness.take("message", 1, timeout=1)
    assert outputs[0]["payload"]["body"]["n"] == 1
    assert harness.empty("message")
    assert harness.queued() == 1


def test_shutdown_deadline_bounds_the_wait(step):
    harness = step("work", env={"ELASTICIO_SHUTDOWN_TIMEOUT": "1"})
    worker = harness.start_worker()
    harness.send({"sleep": 30})
    wait_for(lambda: harness.queued() == 0)  # the worker has taken it
    worker.signal()
    assert worker.wait(timeout=15) == 0  # long before the step's 30 s
    assert "shutdown_deadline_passed" in worker.text
    wait_for(lambda: harness.queued() == 1)  # unfinished: back in the queue, not lost


def test_health_reports_a_consuming_worker_and_not_a_stopped_one(step, tmp_path):
    from tests.helpers import run_cli

    health = str(tmp_path / "health")
    harness = step("work")
    worker = harness.start_worker(ELASTICIO_HEALTH_FILE=health)
    wait_for(lambda: os.path.exists(health))  # touched once consuming
    assert run_cli("health", env={"ELASTICIO_HEALTH_FILE": health}).returncode == 0
    worker.signal()
    assert worker.wait() == 0
    past = time.time() - 2  # nothing touches it any more: as it would be two seconds on
    os.utime(health, (past, past))
    stale = run_cli("health", "--max-age", "1", env={"ELASTICIO_HEALTH_FILE": health})
    assert stale.returncode == 1
    assert "unhealthy" in stale.stdout
