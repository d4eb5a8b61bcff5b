"""A three-node RabbitMQ cluster on this machine, for failover tests and for people.

``python -m runtime.devtools.cluster up|down|status|kill NODE|stop NODE|start NODE|urls``
(``scripts/cluster`` runs it). The nodes ``c1``, ``c2`` and ``c3`` run from the installed
``rabbitmq-server`` as the ``rabbitmq`` user, each with its own node name
(``c1@localhost``), AMQP port (5681, 5682, 5683), distribution port (25681...), and data,
log and configuration folders under ``RUNTIME_CLUSTER_DIR`` (default ``runtime-cluster``
in the temporary folder), owned by that user; ``c2`` and ``c3`` join ``c1``. No plugin is
enabled, so nothing else binds a port. The RabbitMQ on 127.0.0.1:5672 (``rabbit@...``) is
not touched: the nodes share only epmd and the Erlang cookie with it.

``kill`` is ``kill -9`` of a node's Erlang VM (a crash); ``stop`` and ``start`` are the
graceful stop and the restart of an upgrade. A node started again rejoins the cluster by
itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NODES = ("c1", "c2", "c3")
"""The nodes ``scripts/cluster`` manages."""
FIRST_PORT = 5681
HOST = "localhost"
START_SECONDS = 120.0


class ClusterError(Exception):
    """A node did not start, join or stop; the message says which and why."""


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    base: Path

    @property
    def erlang_name(self) -> str:
        return f"{self.name}@{HOST}"

    @property
    def dist_port(self) -> int:
        return 20000 + self.port

    @property
    def folder(self) -> Path:
        return self.base / self.name

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.erlang_name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }


class Cluster:
    """Three nodes named ``{prefix}1..3`` on ports ``first_port`` and the next two (the
    tests use their own prefix and ports, so a cluster someone started is left alone)."""

    def __init__(
        self, base: Path | None = None, *, prefix: str = "c", first_port: int = FIRST_PORT
    ) -> None:
        default = Path(tempfile.gettempdir()) / "runtime-cluster"
        self.base = base or Path(os.environ.get("RUNTIME_CLUSTER_DIR", str(default)))
        self.nodes = [Node(f"{prefix}{i + 1}", first_port + i, self.base) for i in range(3)]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        names = ", ".join(node.name for node in self.nodes)
        raise ClusterError(f"no node {name!r}: the nodes are {names}")

    def node_at(self, address: str) -> Node:
        """The node listening at ``host:port`` (as the worker logs where it connected)."""
        port = int(address.rsplit(":", 1)[1])
        for node in self.nodes:
            if node.port == port:
                return node
        raise ClusterError(f"no node of this cluster listens at {address}")

    @property
    def urls(self) -> str:
        """``ELASTICIO_AMQP_URI`` for the cluster: every node, comma-separated."""
        return ",".join(node.url for node in self.nodes)

    def up(self) -> None:
        """Start the nodes that are not running and join them to ``c1``."""
        for node in self.nodes:
            if not self.running(node):
                self._prepare(node)
                self._start(node)
        for node in self.nodes:
            self._await(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            if first.erlang_name not in self._ctl(node, "cluster_status", check=False):
                self._ctl(node, "stop_app")
                self._ctl(node, "reset")
                self._ctl(node, "join_cluster", first.erlang_name)
                self._ctl(node, "start_app")
                self._await(node)

    def down(self) -> None:
        """Stop every node and remove its folders."""
        for node in self.nodes:
            if self.running(node):
                self._ctl(node, "stop", check=False)
            self._kill_leftover(node)
        shutil.rmtree(self.base, ignore_errors=True)

    def kill(self, name: str) -> None:
        """``kill -9`` the node's Erlang VM, as a crash or a lost machine would."""
        node = self.node(name)
        pid = self._pid(node)
        if pid is None:
            raise ClusterError(f"node {name} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.running(node) and time.monotonic() < deadline:
            time.sleep(0.1)

    def freeze(self, name: str) -> None:
        """``SIGSTOP`` the node's Erlang VM: its sockets stay open and nothing answers, as
        with a machine that hangs or a network that drops packets silently."""
        os.kill(self._running_pid(name), signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        """``SIGCONT`` a frozen node: it goes on where it stopped."""
        os.kill(self._running_pid(name), signal.SIGCONT)

    def _running_pid(self, name: str) -> int:
        pid = self._pid(self.node(name))
        if pid is None:
            raise ClusterError(f"node {name} is not running")
        return pid

    def stop(self, name: str) -> None:
        """Stop a node gracefully (its clients are told the connection is closing)."""
        self._ctl(self.node(name), "stop")

    def start(self, name: str) -> None:
        """Start a stopped or killed node again; it rejoins the cluster."""
        node = self.node(name)
        if not self.running(node):
            self._start(node)
        self._await(node)

    def running(self, node: Node) -> bool:
        pid = self._pid(node)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def queue(self, name: str) -> tuple[int, int, int] | None:
        """A queue's messages ready, messages delivered and unacknowledged, and consumers, as
        a running node sees them; None when no node lists it."""
        for node in self.nodes:
            if not self.running(node):
                continue
            listing = self._ctl(
                node, "-q", "list_queues", "--no-table-headers",
                "name", "messages_ready", "messages_unacknowledged", "consumers", check=False,
            )  # fmt: skip
            for row in (line.split("\t") for line in listing.splitlines()):
                if row[0] == name and len(row) == 4 and all(v.isdigit() for v in row[1:]):
                    return int(row[1]), int(row[2]), int(row[3])
        return None

    def status(self) -> dict[str, str]:
        return {node.name: "running" if self.running(node) else "down" for node in self.nodes}

    # --- the work --------------------------------------------------------------------------

    def _prepare(self, node: Node) -> None:
        folder = node.folder
        (folder / "log").mkdir(parents=True, exist_ok=True)
        (folder / "mnesia").mkdir(parents=True, exist_ok=True)
        (folder / "rabbitmq-env.conf").write_text("")
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{node.port}\n"
            "loopback_users = none\n"
            # A restarted node waits for its peers' tables instead of giving up early.
            "mnesia_table_loading_retry_timeout = 10000\n"
            "mnesia_table_loading_retry_limit = 30\n"
        )
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for path in [folder, *folder.rglob("*")]:
            shutil.chown(path, "rabbitmq", "rabbitmq")

    def _start(self, node: Node) -> None:
        command = ["runuser", "-u", "rabbitmq", "--", "rabbitmq-server", "-detached"]
        done = subprocess.run(
            command, env=node.env(), capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise ClusterError(f"node {node.name} did not start: {done.stderr.strip()[-500:]}")

    def _await(self, node: Node) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            answer = self._ctl(node, "await_startup", "--timeout", "10", check=False)
            if "error" not in answer.lower() and self.running(node):
                return
            time.sleep(0.5)
        log = node.folder / "log" / f"{node.erlang_name}.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else "(no log)"
        raise ClusterError(f"node {node.name} did not finish starting: {tail}")

    def _ctl(self, node: Node, *args: str, check: bool = True) -> str:
        command = ["runuser", "-u", "rabbitmq", "--", "rabbitmqctl", "-n", node.erlang_name,
                   *args]  # fmt: skip
        done = subprocess.run(
            command, env=node.env(), capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise ClusterError(
                f"rabbitmqctl {' '.join(args)} on {node.name} failed: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        return done.stdout + done.stderr

    def _pid(self, node: Node) -> int | None:
        try:
            return int((node.folder / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _kill_leftover(self, node: Node) -> None:
        pid = self._pid(node)
        if pid is not None and self.running(node):
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/cluster", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "kill", "stop", "start", "urls"])
    parser.add_argument("node", nargs="?", choices=NODES)
    args = parser.parse_args(argv)
    cluster = Cluster()
    try:
        if args.action in ("kill", "stop", "start"):
            if args.node is None:
                parser.error(f"{args.action} needs a node: {', '.join(NODES)}")
            getattr(cluster, args.action)(args.node)
        elif args.action == "up":
            cluster.up()
            print(f"cluster up; ELASTICIO_AMQP_URI={cluster.urls}")
        elif args.action == "down":
            cluster.down()
        elif args.action == "urls":
            print(cluster.urls)
        else:
            for name, state in cluster.status().items():
                print(f"{name}  {state}  {cluster.node(name).url}")
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
