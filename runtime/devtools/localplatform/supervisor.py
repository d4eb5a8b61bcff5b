"""Workers started for you: every node's replicas, restarted when they die, stopped together.

Each worker gets exactly the environment ``platform env`` prints for its node (and the platform
API's address): ours runs ``python -m runtime run`` in the component's folder, a Node.js
component the sailor it installed (``node_modules/elasticio-sailor-nodejs/run.js``, found as
Node.js finds modules: in the folder or a parent). Their output lines are printed prefixed with
``node/replica`` (``flow/node/replica`` when several flows run together). A worker that exits
is started again after a back-off that doubles from 1 s to 30 s (and resets once a worker has
run for a minute), and said so. On Linux a worker also gets SIGTERM when the platform itself
dies, even by ``kill -9``: none is left running unsupervised.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runtime.devtools.localplatform.graph import GraphFlow, Node
from runtime.errors import ConfigError
from runtime.log import get_logger

_log = get_logger(__name__)
SAILOR = Path("node_modules") / "elasticio-sailor-nodejs" / "run.js"
BACKOFF_FIRST, BACKOFF_MAX, STEADY = 1.0, 30.0, 60.0


def sailor_of(folder: Path) -> Path:
    """The Node.js sailor a component installed, looked up as ``require`` would."""
    for parent in (folder, *folder.parents):
        candidate = parent / SAILOR
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"{folder}: no {SAILOR} in the folder or above it; run 'npm install' there (a Node.js "
        "component depends on elasticio-sailor-nodejs)"
    )


class Lines(Protocol):
    """Where the workers' lines go: a terminal, or something that picks from them."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


@dataclass
class Replica:
    node: str
    number: int
    flow: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)
    started_at: float = field(default=0.0, init=False)
    pump: threading.Thread | None = field(default=None, repr=False, init=False)

    @property
    def label(self) -> str:
        return (
            f"{self.flow}/{self.node}/{self.number}" if self.flow else f"{self.node}/{self.number}"
        )


class Supervisor:
    """Starts and keeps the flow's workers; ``stop`` ends them all within the bound."""

    def __init__(
        self,
        flow: GraphFlow,
        api_url: str,
        *,
        out: Lines | None = None,
        env: dict[str, str] | None = None,
        shutdown_bound: float = 65.0,
        name_the_flow: bool = False,
    ) -> None:
        self.flow = flow
        self.out: Lines = out or sys.stdout
        self.shutdown_bound = shutdown_bound
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        base = {k: v for k, v in (env or os.environ).items() if not k.startswith("ELASTICIO_")}
        self.replicas: list[Replica] = []
        steps = flow.steps()
        for node in flow.graph.nodes:
            folder = flow.component_folder(node)
            if folder is None:
                continue  # the platform's webhook: the local platform plays it
            command = self._command(node, folder)
            worker_env = {**base, **steps[node.id].worker_env(api_url)}
            for number in range(1, flow.replicas(node) + 1):
                flow_name = flow.id if name_the_flow else ""
                self.replicas.append(
                    Replica(node.id, number, flow_name, command, folder, worker_env)
                )
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def _command(self, node: Node, folder: Path) -> list[str]:
        if self.flow.runtime_of(node) == "nodejs":
            return ["node", str(sailor_of(folder))]
        return [sys.executable, "-m", "runtime", "run"]

    def start(self) -> Supervisor:
        for replica in self.replicas:
            self._spawn(replica)
        self._watcher.start()
        return self

    def _spawn(self, replica: Replica) -> None:
        replica.process = subprocess.Popen(
            replica.command,
            cwd=replica.cwd,
            env=replica.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # a Ctrl-C in the terminal reaches the platform, not them
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one system call, no lock taken
        )
        replica.started_at = time.monotonic()
        replica.pump = threading.Thread(
            target=self._pump, args=(replica, replica.process), daemon=True
        )
        replica.pump.start()
        _log.info("worker_started", node=replica.node, replica=replica.number,
                  pid=replica.process.pid)  # fmt: skip

    def _pump(self, replica: Replica, process: subprocess.Popen[str]) -> None:
        for line in process.stdout or ():
            self.write(f"[{replica.label}] {line.rstrip()}\n")

    def write(self, text: str) -> None:
        with self._write_lock:
            self.out.write(text)
            self.out.flush()

    def _watch(self) -> None:
        due: dict[int, float] = {}
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for index, replica in enumerate(self.replicas):
                process = replica.process
                if process is None or process.poll() is None:
                    continue
                if index not in due:
                    ran = now - replica.started_at
                    if ran >= STEADY:
                        replica.restarts = 0
                    delay = min(BACKOFF_FIRST * 2**replica.restarts, BACKOFF_MAX)
                    due[index] = now + delay
                    _log.warning("worker_exited", node=replica.node, replica=replica.number,
                                 code=process.returncode, restart_in=delay)  # fmt: skip
                elif now >= due[index] and not self._stop.is_set():
                    del due[index]
                    replica.restarts += 1
                    self._spawn(replica)

    def pids(self, node: str) -> list[int]:
        return [
            r.process.pid
            for r in self.replicas
            if r.node == node and r.process is not None and r.process.poll() is None
        ]

    def stop(self) -> None:
        """SIGTERM to every worker at once; those still running at the bound are killed."""
        self._stop.set()
        running = [r.process for r in self.replicas if r.process and r.process.poll() is None]
        for process in running:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_bound
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()
        for replica in self.replicas:
            if replica.pump is not None:
                replica.pump.join(2)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
"""Loaded before any fork: the child only makes the one call."""


def _die_with_parent() -> None:
    """In the new worker, before it runs: SIGTERM when the platform dies, however it dies
    (a ``kill -9`` included), so that no worker outlives it unseen. Linux only."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal(process: subprocess.Popen[str], number: int) -> None:
    try:
        process.send_signal(number)
    except ProcessLookupError:
        pass
