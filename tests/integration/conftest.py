"""A real RabbitMQ, the local platform's API and topology, and the worker as a process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime.devtools.localplatform import messaging, topology
from runtime.devtools.localplatform.api_server import PlatformApiServer
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.worker.amqp import AdminClient, broker_reachable
from tests.broker_control import BrokerControl, control_for
from tests.helpers import FIXTURES, ROOT, wait_for

FLOWSTEPS = FIXTURES / "flowsteps"
NODE_DIR = ROOT / "bench" / "node"
NODE_SAILOR = NODE_DIR / "node_modules" / "elasticio-sailor-nodejs"
LOCAL_BROKER = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def unavailable(message: str) -> None:
    """A missing service fails the run in CI (CI=true) and skips the test elsewhere."""
    pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return probe.returncode == 0


CONTAINERS: dict[str, str] = {}
"""The container id of each broker the tests started, by its URL (to ask its rabbitmqctl)."""


def _in_containers() -> bool:
    """TEST_CONTAINERS=1: RabbitMQ and Redis from testcontainers, even where local ones answer
    (CI runs part of the suite so, to keep the containers' path working)."""
    return os.environ.get("TEST_CONTAINERS", "") not in ("", "0")


def _local_or_container(url, reachable, container, what: str, variable: str):
    """The service at ``url`` if it answers, else one in a container where Docker runs.

    In CI (CI=true) a missing service fails the run; elsewhere the tests are skipped.
    """
    if not _in_containers() and reachable(url):
        yield url
        return
    if _docker_available():
        with container() as started:
            yield started
        return
    why = "TEST_CONTAINERS is set" if _in_containers() else f"no {what} at {url}"
    unavailable(f"{why} and no Docker engine answers for testcontainers (set {variable})")


@contextlib.contextmanager
def _rabbitmq_container():
    try:  # testcontainers 4.15 moved it; the old path warns
        from testcontainers.community.rabbitmq import RabbitMqContainer
    except ImportError:
        from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3-management") as container:
        params = container.get_connection_params()
        url = f"amqp://guest:guest@{params.host}:{params.port}/"
        CONTAINERS[url] = container.get_wrapped_container().id
        yield url


@contextlib.contextmanager
def _redis_container():
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:
        from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7") as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"


def _redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def amqp_url():
    """RABBITMQ_URL, else the local broker, else a testcontainers RabbitMQ."""
    url = os.environ.get("RABBITMQ_URL") or LOCAL_BROKER
    yield from _local_or_container(
        url, broker_reachable, _rabbitmq_container, "RabbitMQ", "RABBITMQ_URL"
    )


@pytest.fixture(scope="session")
def broker_control(amqp_url) -> BrokerControl:
    """The rabbitmqctl of the broker the tests use (tests/broker_control.py)."""
    return control_for(amqp_url, CONTAINERS.get(amqp_url))


@pytest.fixture(scope="session")
def redis_url():
    """REDIS_URL, else the local Redis, else a testcontainers Redis."""
    url = os.environ.get("REDIS_URL") or LOCAL_REDIS
    yield from _local_or_container(url, _redis_reachable, _redis_container, "Redis", "REDIS_URL")


def forget_credential(redis_url: str, key: str) -> None:
    """Remove what the credential lock wrote to Redis for ``key`` (its lock, its keys)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        names = list(client.scan_iter(match=f"eio:credential:{key}:*", count=100))
        if names:
            client.delete(*names)
    except redis.ConnectionError:
        pass  # a store no one reached (the tests of an unreachable one) holds nothing
    finally:
        client.close()


@pytest.fixture
def account_key(redis_url):
    """A factory of credential names of the test's own, removed from Redis after it."""
    made: list[str] = []

    def make() -> str:
        made.append(f"account:{uuid.uuid4().hex}")
        return made[-1]

    yield make
    for key in made:
        forget_credential(redis_url, key)


@pytest.fixture(scope="session")
def node_sailor() -> Path:
    """elastic.io's Node.js sailor 2.7.8, installed from bench/node/package-lock.json."""
    if not (NODE_SAILOR / "run.js").exists():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is needed to install the Node.js sailor for interoperability tests")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_SAILOR


DEMO_NODE_STEP = ROOT / "demo" / "components" / "reply-node"


@pytest.fixture(scope="session")
def demo_node_step() -> Path:
    """The demo's Node.js step with its sailor installed, as scripts/demo installs it."""
    if not (DEMO_NODE_STEP / "node_modules" / "elasticio-sailor-nodejs" / "run.js").exists():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is needed to install the demo's Node.js step")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=DEMO_NODE_STEP,
                       check=True, capture_output=True, timeout=300)  # fmt: skip
    return DEMO_NODE_STEP


@pytest.fixture
def platform_api():
    server = PlatformApiServer(username="task-user", password="task-key-123456").start()
    yield server
    server.stop()


class WorkerProcess:
    """``python -m runtime run`` with a step's environment; its JSON log lines collected."""

    def __init__(self, env: dict[str, str], cwd: Path, command: list[str] | None = None) -> None:
        self.env = env
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "runtime", "run", "--log-format", "json"],
            cwd=cwd,
            env=env,
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
            self.lines.append(line.rstrip("\n"))

    @property
    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for line in list(self.lines):
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"msg": line})
        return entries

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, msg: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.logs:
                if entry.get("msg") == msg:
                    return entry
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {msg!r} log line; worker output:\n{self.text}")

    def signal(self, number: int = signal.SIGTERM) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._close()
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()


class StepHarness:
    """One step of a flow on the real broker: topology, platform API, worker, outputs."""

    def __init__(
        self,
        amqp_url: str,
        api: PlatformApiServer,
        function: str,
        control: BrokerControl | None = None,
        **flow: Any,
    ) -> None:
        self._control = control
        config = flow.pop("config", {})
        self.component = flow.pop("component", FLOWSTEPS)
        dead_letters = flow.pop("dead_letters", False)
        # The harness's own lock folder (the platform's default is shared by every flow on
        # the machine), removed with it.
        self.lock_folder = Path(tempfile.mkdtemp(prefix="harness-locks-"))
        self.flow = FlowSpec.model_validate(
            {
                "flowId": f"t-{uuid.uuid4().hex[:10]}",
                "function": function,
                "amqpUrl": amqp_url,
                "credentialLockUrl": f"file://{self.lock_folder}",
                **flow,
            }
        )
        self.connection_name = f"test-{self.flow.flow_id}"
        self.api = api
        api.add_step(self.flow.flow_id, self.flow.step_id, self.flow.step_data(config))
        self.admin = AdminClient(amqp_url, name="test")
        topology.declare(self.flow, self.admin)
        self.dead_queue: str | None = None
        if dead_letters:
            self._dead_letter_rejects()
        self.workers: list[WorkerProcess] = []

    def _dead_letter_rejects(self) -> None:
        """What the platform does with rejected messages: they go to a queue of their own."""
        queue = self.flow.messages_queue
        self.dead_queue = f"{queue}:dead"
        self.admin.declare_queue(self.dead_queue)
        self.admin.delete_queue(queue)
        self.admin.declare_queue(
            queue,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.dead_queue},
        )
        self.admin.bind(queue, self.flow.publish_exchange, self.flow.routing_key("input"))

    def dead_lettered(self) -> int:
        """Messages the worker rejected (with ``dead_letters=True``)."""
        assert self.dead_queue is not None
        return self.admin.count(self.dead_queue)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
        env.update(self.flow.worker_env(self.api.url))
        env["ELASTICIO_API_USERNAME"] = self.api.state.username
        env["ELASTICIO_API_KEY"] = self.api.state.password
        env["ELASTICIO_DATA_RATE_LIMIT"] = "100000"
        env["ELASTICIO_ERROR_RATE_LIMIT"] = "100000"
        env["ELASTICIO_SNAPSHOT_RATE_LIMIT"] = "100000"
        # Its own connection names, so that a test closing "its" connections closes no one
        # else's on a broker other test runs and demos share.
        env["ELASTICIO_AMQP_CONNECTION_NAME"] = self.connection_name
        env["PYTHONPATH"] = str(ROOT)
        env.update(extra)
        return env

    def start_worker(self, *, wait: bool = True, **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(self.env(**extra_env), cwd=self.component)
        self.workers.append(worker)
        if wait:
            worker.wait_for_log("worker_ready")
        return worker

    def start_node_worker(self, sailor: Path, **extra_env: str) -> WorkerProcess:
        """The Node.js sailor running the passthrough component, with the same environment."""
        env = self.env(**extra_env)
        worker = WorkerProcess(
            env, cwd=NODE_DIR / "component", command=["node", str(sailor / "run.js")]
        )
        self.workers.append(worker)
        worker.wait_for_log("Fully initialized and waiting for messages")
        return worker

    def send(self, body: Any, *, version: int = 1, **headers: Any) -> str:
        return messaging.send(self.flow, self.admin, body, headers=headers, version=version)

    def publish_raw(self, body: bytes, headers: dict[str, Any]) -> None:
        from runtime.worker.transport import Properties

        self.admin.publish(
            self.flow.publish_exchange,
            self.flow.routing_key("input"),
            body,
            Properties(headers=headers, content_type="application/json"),
        )

    def take(self, kind: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait for ``count`` messages on an output queue and return them decoded."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            got = self.admin.get(self.flow.output_queue(kind))
            if got is None:
                time.sleep(0.02)
                continue
            body, properties = got
            event = messaging.read(self.flow, kind, body, properties)
            event["properties"] = properties
            event["raw"] = body
            found.append(event)
        assert len(found) == count, f"expected {count} on {kind}, got {len(found)}"
        return found

    def take_raw(self, kind: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.admin.get(self.flow.output_queue(kind))
            if got is not None:
                return got
            time.sleep(0.02)
        raise AssertionError(f"nothing on {kind}")

    def empty(self, kind: str, timeout: float = 30.0) -> bool:
        """Whether nothing came out on ``kind``, checked once every message sent so far is
        settled: a message's events are all published before it is acked, so nothing can
        still be on its way then."""
        self.wait_settled(timeout)
        return self.admin.count(self.flow.output_queue(kind)) == 0

    @property
    def control(self) -> BrokerControl:
        if self._control is None:
            self._control = control_for(self.flow.amqp_url, CONTAINERS.get(self.flow.amqp_url))
        return self._control

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until the step's queue holds no message, delivered or not; with no worker
        left consuming, until none is delivered and unsettled."""
        queue = self.flow.messages_queue

        def settled() -> bool:
            state = self.control.queue(queue)
            if state is None:
                return False
            return state.unacked == 0 and (state.ready == 0 or state.consumers == 0)

        wait_for(settled, timeout=timeout, what=f"every message of {queue} settled")

    def queued(self) -> int:
        return self.admin.count(self.flow.messages_queue)

    def close_connections(self, role: str) -> int:
        """Force-close this harness's workers' ``-read`` or ``-write`` connections, as an
        operator would (only theirs: others on the broker are left alone)."""
        return self.control.close_connections_named(
            f"{self.connection_name}-{role}", "test: closed"
        )

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        lock_url = self.flow.credential_lock_url or ""
        for env_url in {w.env.get("ELASTICIO_CREDENTIAL_LOCK_URL", "") for w in self.workers}:
            lock_url = env_url or lock_url
        if lock_url.startswith("redis://"):
            forget_credential(lock_url, f"account:{self.flow.account}")  # runtime/step/http.py
        try:
            if self.dead_queue is not None:
                self.admin.delete_queue(self.dead_queue)
            topology.remove(self.flow, self.admin)
        finally:
            self.admin.close()
            shutil.rmtree(self.lock_folder, ignore_errors=True)
        # The ledger shrugs off a second settle in production (raising on the broker's I/O
        # thread would cost the connection); in every test it is a bug, and fails it.
        twice = [e for w in self.workers for e in w.logs if e.get("msg") == "settled_twice"]
        assert not twice, f"a delivery was settled twice: {twice}"


@pytest.fixture
def step(amqp_url, platform_api, broker_control):
    """A factory: ``step("work", config={...})`` gives a harness; all are cleaned up."""
    made: list[StepHarness] = []

    def make(function: str, **flow: Any) -> StepHarness:
        harness = StepHarness(amqp_url, platform_api, function, broker_control, **flow)
        made.append(harness)
        return harness

    yield make
    failures = []
    for harness in made:
        try:
            harness.close()
        except AssertionError as failure:  # the others are still closed
            failures.append(failure)
    if failures:
        raise failures[0]


@pytest.fixture
def store():
    """The local platform's object store (object storage and attachment storage)."""
    from runtime.devtools.localplatform.object_store import ObjectStore

    server = ObjectStore("storage-token-123456").start()
    yield server
    server.stop()
