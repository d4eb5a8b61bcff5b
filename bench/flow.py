"""Whole flows on the local platform: what routing between steps costs.

    scripts/bench --flows              # the flow cases, 3 runs each (about 4 minutes)
    .venv/bin/python -m bench.flow --runs 1 --messages 2000

Each case is a flow of passthrough steps run by ``platform up`` (its router and its
supervised workers, prefetch 10, passthrough as the platform has it: on), fed N messages of
200 B at once into its first step, every output of its last step consumed, decrypted and
checked (lost, duplicated and corrupted counts must be 0):

* one step (ours): the baseline, no router;
* three steps (ours, ours, ours): two routed edges;
* three steps (ours, Node.js, ours): the sailor in the middle;
* three steps with a mapper on both edges: the router's own cost (an edge without a mapper
  is a binding of the broker's, which no process here pays for).

Reported per case: end-to-end messages per second (first output to last), latency p50/p99
from publish to the last step's output in a paced run (100 messages a second), and CPU
seconds per 1,000 messages of the router (the ``platform up`` process, without its workers)
and of each step's worker. Goals: the router's CPU per message at most a quarter of a
passthrough step's, and N steps at least 0.8 x (one step's throughput / N) on this machine.
Results: bench/results/flows.md and bench/results/flows.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from runtime.devtools.localplatform import topology
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.devtools.localplatform.graph_files import load_graph
from runtime.devtools.localplatform.messaging import cipher_for
from runtime.worker.amqp import AdminClient
from runtime.worker.transport import Properties
from runtime.worker.wire import decode_value, encode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
AMQP_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OURS = {"path": str(BENCH / "python_component")}
NODE = {"path": str(BENCH / "node" / "component"), "runtime": "nodejs"}
UNTHROTTLED = {f"ELASTICIO_{kind}_RATE_LIMIT": "1000000" for kind in ("DATA", "ERROR", "SNAPSHOT")}
"""As in bench/run.py: the platform's default throttle (100 data messages a second) lifted."""
CASES: dict[str, list[str]] = {
    "one step (ours)": ["ours"],
    "three steps (ours, ours, ours)": ["ours", "ours", "ours"],
    "three steps (ours, Node.js, ours)": ["ours", "node", "ours"],
    "three steps (ours, ours, ours), mapped edges": ["ours", "ours", "ours"],
}
MAPPER = {"seq": "seq", "sent_at": "sent_at", "pad": "pad"}
"""Every field through JSONata: the router decrypts, maps and encrypts each message."""


def flow_file(folder: Path, kinds: list[str], mapped: bool) -> Path:
    nodes = [
        {"id": f"step_{i}", "command": f"bench/{kind}:passthrough"}
        for i, kind in enumerate(kinds, start=1)
    ]
    edges = [
        {"source": a["id"], "target": b["id"], "config": {"mapper": MAPPER if mapped else None}}
        for a, b in itertools.pairwise(nodes)
    ]
    data = {
        "data": {"id": f"bench-{uuid.uuid4().hex[:8]}",
                 "attributes": {"graph": {"nodes": nodes, "edges": edges}}},
        "local": {"components": {"bench/ours": OURS, "bench/node": NODE}, "prefetch": 10,
                  "env": UNTHROTTLED},
    }  # fmt: skip
    path = folder / f"{data['data']['id']}.json"
    path.write_text(json.dumps(data))
    return path


class Up:
    """``platform up`` of one flow: its process, its workers' pids, its output."""

    def __init__(self, path: Path, data: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "platform", "up", "--flow", str(path), "--port",
             "0", "--amqp-url", AMQP_URL, "--data", str(data)],
            cwd=ROOT, env={**os.environ, "LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout or ():
            self.lines.append(line)

    def wait_ready(self, workers: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "".join(self.lines)
            if text.count("worker_ready") + text.count("Fully initialized") >= workers:
                return
            time.sleep(0.1)
        raise RuntimeError("workers did not start:\n" + "".join(self.lines)[-3000:])

    def worker_pids(self) -> dict[str, int]:
        found = {}
        for line in self.lines:
            if '"worker_started"' in line:
                entry = json.loads(line)
                found[entry["node"]] = entry["pid"]
        return found

    def stop(self) -> list[dict[str, Any]]:
        """Stop it; the router's own counts (messages and transactions per node)."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(90)
        time.sleep(0.2)  # the reader's last lines
        return [json.loads(line) for line in self.lines if '"router_stopped"' in line]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def send(admin: AdminClient, flow: GraphFlow, count: int, rate: float | None) -> None:
    first = flow.step(flow.first)
    cipher = cipher_for(first)
    started = time.monotonic()
    for seq in range(count):
        if rate is not None:
            wait = started + seq / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        body = {"seq": seq, "sent_at": time.time(), "pad": "x" * 200}
        admin.publish(
            first.publish_exchange,
            first.routing_key("input"),
            encode({"id": str(uuid.uuid4()), "body": body, "headers": {}}, cipher, 1),
            Properties(headers={"messageId": str(uuid.uuid4()), "threadId": str(uuid.uuid4()),
                                "protocolVersion": 1}, delivery_mode=1),
        )  # fmt: skip


def collect(flow: GraphFlow, count: int, timeout: float) -> dict[str, Any]:
    last = flow.step(flow.graph.nodes[-1])
    cipher = cipher_for(last)
    arrivals: list[tuple[float, int, float]] = []
    corrupted = 0
    stop = threading.Event()

    def on_message(body: bytes, properties: Properties) -> None:
        nonlocal corrupted
        try:
            value = decode_value(body, cipher, int(properties.headers.get("protocolVersion", 1)))
            payload = value["body"]
            assert len(payload["pad"]) == 200
            arrivals.append((time.time(), payload["seq"], payload["sent_at"]))
        except Exception:  # counted, reported
            corrupted += 1
        if len(arrivals) + corrupted >= count:
            stop.set()

    with AdminClient(AMQP_URL, name="bench-flow-collector") as admin:
        timer = threading.Timer(timeout, stop.set)
        timer.start()
        admin.consume(last.output_queue("message"), on_message, stop=stop, auto_ack=True)
        timer.cancel()
    seqs = [seq for _, seq, _ in arrivals]
    return {
        "arrivals": arrivals,
        "lost": count - len(set(seqs)),
        "duplicated": len(seqs) - len(set(seqs)),
        "corrupted": corrupted,
    }


def run_case(name: str, kinds: list[str], messages: int, folder: Path) -> dict[str, Any]:
    path = flow_file(folder, kinds, mapped="mapped" in name)
    flow = load_graph(path)
    up = Up(path, folder / "data")
    try:
        up.wait_ready(len(kinds))
        pids = up.worker_pids()
        before = {node: cpu_seconds(pid) for node, pid in pids.items()}
        router_before = cpu_seconds(up.process.pid)
        with AdminClient(AMQP_URL, name="bench-flow") as admin:
            collector: dict[str, Any] = {}
            reader = threading.Thread(
                target=lambda: collector.update(collect(flow, messages, 300)), daemon=True
            )
            reader.start()
            send(admin, flow, messages, None)
            reader.join(310)
        router = cpu_seconds(up.process.pid) - router_before
        workers = {node: cpu_seconds(pid) - before[node] for node, pid in pids.items()}
        times = sorted(t for t, _, _ in collector["arrivals"])
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        # latency at a pace the flow keeps up with
        paced_count = 500
        with AdminClient(AMQP_URL, name="bench-flow") as admin:
            paced: dict[str, Any] = {}
            reader = threading.Thread(
                target=lambda: paced.update(collect(flow, paced_count, 120)), daemon=True
            )
            reader.start()
            send(admin, flow, paced_count, 100.0)
            reader.join(130)
        latencies = sorted((t - sent) * 1000 for t, _, sent in paced["arrivals"])
        return {
            "case": name,
            "steps": kinds,
            "messages": messages,
            "msgs_per_s": (len(times) - 1) / span if span > 0 else 0.0,
            "p50_ms": statistics.median(latencies) if latencies else None,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
            "router_cpu_s_per_1k": router / messages * 1000,
            "step_cpu_s_per_1k": {n: c / messages * 1000 for n, c in sorted(workers.items())},
            "lost": collector["lost"] + paced["lost"],
            "duplicated": collector["duplicated"] + paced["duplicated"],
            "corrupted": collector["corrupted"] + paced["corrupted"],
        }
    finally:
        routed = up.stop()
        if routed:
            messages = sum(r["messages"] for r in routed)
            transactions = sum(r["transactions"] for r in routed) or 1
            print(json.dumps({"case": name, "messages per transaction":
                              round(messages / transactions, 1)}), flush=True)  # fmt: skip
        with AdminClient(AMQP_URL, name="bench-flow") as admin:
            for step in flow.steps().values():
                topology.remove(step, admin)


def report(results: list[dict[str, Any]], runs: int) -> str:
    by_case: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_case.setdefault(result["case"], []).append(result)
    lines = [
        f"# Whole flows: routing cost ({runs} run(s) per case, medians)",
        "",
        "| case | msgs/s | p50 ms | p99 ms | router CPU s/1k | step CPU s/1k | lost/dup/corrupt |",
        "|---|---|---|---|---|---|---|",
    ]
    medians: dict[str, dict[str, float]] = {}
    for case, rows in by_case.items():
        rate = statistics.median(r["msgs_per_s"] for r in rows)
        p50 = statistics.median(r["p50_ms"] for r in rows)
        p99 = statistics.median(r["p99_ms"] for r in rows)
        router = statistics.median(r["router_cpu_s_per_1k"] for r in rows)
        steps = {
            node: statistics.median(r["step_cpu_s_per_1k"][node] for r in rows)
            for node in rows[0]["step_cpu_s_per_1k"]
        }
        faults = "/".join(str(sum(r[k] for r in rows)) for k in ("lost", "duplicated", "corrupted"))
        step_text = ", ".join(f"{n}: {c:.2f}" for n, c in steps.items())
        lines.append(f"| {case} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {router:.2f} | "
                     f"{step_text} | {faults} |")  # fmt: skip
        medians[case] = {"rate": rate, "router": router, "step": statistics.median(steps.values())}
    one = medians.get("one step (ours)")
    for name, three in medians.items():
        if one is None or not name.startswith("three"):
            continue
        lines += [
            "",
            f"- {name}: {three['rate']:.0f} msgs/s end to end = "
            f"{three['rate'] / (one['rate'] / 3):.2f} x (one step's {one['rate']:.0f} / 3), goal "
            f"at least 0.8; the local platform's CPU {three['router']:.2f} s/1k for two edges, "
            f"{three['router'] / 2 / three['step']:.2f} x a passthrough step's "
            f"{three['step']:.2f} per edge, goal at most 0.25.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--cases", default="", help="substrings of case names, ';'-separated")
    args = parser.parse_args()
    wanted = [c for c in args.cases.split(";") if c]
    chosen = {n: k for n, k in CASES.items() if not wanted or any(w in n for w in wanted)}
    RESULTS.mkdir(exist_ok=True)
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-flows-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    results = []
    for run in range(args.runs):
        for name, kinds in chosen.items():  # interleaved: each run measures every case
            result = run_case(name, kinds, args.messages, folder)
            print(json.dumps({"run": run + 1, **result}), flush=True)
            results.append(result)
    (RESULTS / "flows.json").write_text(json.dumps(results, indent=1))
    text = report(results, args.runs)
    (RESULTS / "flows.md").write_text(text)
    print(text)
    if any(r["lost"] or r["duplicated"] or r["corrupted"] for r in results):
        sys.exit("messages were lost, duplicated or corrupted")


if __name__ == "__main__":
    main()
