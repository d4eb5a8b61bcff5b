"""What an operator sees of a running worker: Prometheus metrics and the two probes.

Each test runs a real worker process on the real broker with ``ELASTICIO_METRICS_PORT=0``
(any free port, which the worker logs) and reads the port as Prometheus and the kubelet
would.
"""

from __future__ import annotations

import signal
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from tests.helpers import ROOT, demo_oauth, run_cli, wait_for


@pytest.fixture
def provider():
    api = DemoApi(ProviderSettings(access_lifetime=300)).start()
    yield api
    api.stop()


def port_of(worker) -> int:
    return int(worker.wait_for_log("metrics_listening")["port"])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_the_test_saw_including_a_token_refresh(step, provider):
    config = {**demo_oauth(provider), "method": "GET", "url": "/records/{{body.id}}"}
    harness = step("httpRequest", component=ROOT, config=config, prefetch=3)
    worker = harness.start_worker(ELASTICIO_METRICS_PORT="0")
    port = port_of(worker)
    for number in range(1, 4):
        harness.send({"id": number})
    first = harness.take("message", 3)
    provider.book.expire_all()  # the next messages meet an expired token: one refresh
    for number in range(4, 7):
        harness.send({"id": number})
    second = harness.take("message", 3)
    keys = harness.take("keys", 1)
    assert len(first) + len(second) == 6 and len(keys) == 1

    wait_for(lambda: value(scrape(port), "eio_messages_settled_total", outcome="ack") == 6)
    samples = scrape(port)
    assert value(samples, "eio_messages_received_total") == 6
    assert value(samples, "eio_messages_settled_total", outcome="reject") == 0
    assert value(samples, "eio_messages_in_flight") == 0
    assert value(samples, "eio_events_emitted_total", kind="data") == 6
    assert value(samples, "eio_events_emitted_total", kind="updateKeys") == 1
    assert value(samples, "eio_events_emitted_total", kind="error") == 0
    assert value(samples, "eio_step_duration_seconds_count", step="httpRequest") == 6
    assert value(samples, "eio_token_refreshes_total", outcome="ok") == 1
    assert provider.stats()["token_calls"] == 1
    assert value(samples, "eio_token_refresh_seconds_count", outcome="ok") == 1
    assert value(samples, "eio_credential_lock_wait_seconds_count") == 1
    # seven publishes (six data, one updateKeys), each confirmed
    assert value(samples, "eio_publish_confirm_seconds_count") == 7
    assert value(samples, "eio_received_bytes_total") > 0
    assert value(samples, "eio_published_bytes_total") > 0
    assert value(samples, "process_resident_memory_bytes") > 0
    # Low cardinality: no message id, account or URL ever becomes a label.
    ours = [pairs for (name, pairs) in samples if name.startswith("eio_")]
    assert {label for pairs in ours for label, _ in pairs} <= {"outcome", "kind", "step", "le"}
    assert {v for pairs in ours for label, v in pairs if label == "step"} == {"httpRequest"}


def test_probes_say_starting_ready_and_stopping(step):
    harness = step("hooked", config={"initSeconds": 3})
    worker = harness.start_worker(wait=False, ELASTICIO_METRICS_PORT="0")
    port = port_of(worker)
    status, text = get(port, "/readyz")
    assert (status, text.strip()) == (503, "starting")
    assert get(port, "/livez")[0] == 200  # starting is alive: do not restart it
    worker.wait_for_log("worker_ready")
    assert get(port, "/readyz") == (200, "ok\n")
    assert get(port, "/livez") == (200, "ok\n")
    health = run_cli("health", env={"ELASTICIO_METRICS_PORT": str(port)})
    assert health.returncode == 0 and "healthy: ok" in health.stdout

    slow = step("work", prefetch=1)
    slow_worker = slow.start_worker(ELASTICIO_METRICS_PORT="0")
    slow_port = port_of(slow_worker)
    slow.send({"sleep": 3})
    wait_for(lambda: "step_started" in slow_worker.text or scrape_in_flight(slow_port) == 1)
    slow_worker.process.send_signal(signal.SIGTERM)
    wait_for(lambda: get(slow_port, "/readyz")[0] == 503, timeout=5)
    assert get(slow_port, "/readyz")[1].strip() == "stopping"
    health = run_cli("health", env={"ELASTICIO_METRICS_PORT": str(slow_port)})
    assert health.returncode == 1 and "unhealthy: stopping" in health.stdout
    assert slow.take("message", 1)  # the message in flight still finished
    slow_worker.process.wait(15)


def scrape_in_flight(port: int) -> float:
    return value(scrape(port), "eio_messages_in_flight")


def test_health_names_a_port_nobody_listens_on():
    result = run_cli("health", env={"ELASTICIO_METRICS_PORT": "9"})
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "unhealthy: no answer from http://127.0.0.1:9/readyz (connection refused)"
    )
