"""The worker benchmark: ours, the bare pika ceiling and the Node.js sailor, in one run.

    scripts/bench                      # everything, 3 runs per case (about 10 minutes)
    scripts/bench --quick              # 1 run, fewer messages: a smoke test of the suite
    .venv/bin/python bench/run.py --help

For each case and worker: a fresh step topology on the machine's RabbitMQ, N encrypted
messages in the platform's format, the worker started as a subprocess with the platform's
environment, every output consumed and decrypted. Reported: messages per second (sustained,
first 5 % excluded), latency p50/p99 (paced mode), start-up to the first output, peak RSS,
CPU seconds per 1,000 messages, and lost / duplicated / corrupted counts (must be 0).
Results: bench/results/report.md, bench/results/throughput.png, bench/results/raw.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.devtools.localplatform import topology
from runtime.devtools.localplatform.api_server import PlatformApiServer
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.worker.amqp import AdminClient
from runtime.worker.crypto import MessageCipher
from runtime.worker.transport import Properties
from runtime.worker.wire import decode_value, encode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
NODE_SAILOR = BENCH / "node" / "node_modules" / "elasticio-sailor-nodejs" / "run.js"
AMQP_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNLIMITED = "1000000000"


@dataclass(frozen=True)
class Case:
    name: str
    size: int
    prefetch: int
    mode: str  # "filled" or "paced"
    messages: int
    rate: float = 0.0


@dataclass
class Result:
    case: str
    worker: str
    run: int
    rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    startup_s: float = 0.0
    rss_mb: float = 0.0
    cpu_per_1000: float = 0.0
    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def cases(quick: bool) -> list[Case]:
    small, large = (1500, 300) if quick else (6000, 1200)
    return [
        Case("200 B, prefetch 1", 200, 1, "filled", small),
        Case("200 B, prefetch 10", 200, 10, "filled", small),
        Case("100 KB, prefetch 1", 100_000, 1, "filled", large),
        Case("100 KB, prefetch 10", 100_000, 10, "filled", large),
        Case("paced 200/s, 200 B, prefetch 1", 200, 1, "paced", 600 if quick else 2000, 200.0),
    ]


PY_SPY = str(Path(sys.executable).with_name("py-spy"))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def worker_command(worker: str) -> tuple[list[str], Path]:
    if worker.startswith("ours"):
        return [sys.executable, "-m", "runtime", "run"], BENCH / "python_component"
    if worker == "pika":
        return [sys.executable, str(BENCH / "ceiling.py")], BENCH
    return ["node", str(NODE_SAILOR)], BENCH / "node" / "component"


class Collector:
    """Consumes the data queue, decrypting every output and timing its arrival."""

    def __init__(self, flow: FlowSpec, cipher: MessageCipher) -> None:
        self.flow = flow
        self.cipher = cipher
        self.arrivals: list[tuple[float, int, float]] = []
        self.corrupted = 0
        self.stop = threading.Event()
        self.client = AdminClient(AMQP_URL, name="bench-collector")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        def on_message(body: bytes, properties: Properties) -> None:
            now = time.time()
            try:
                value = decode_value(
                    body, self.cipher, int(properties.headers.get("protocolVersion", 1))
                )
                payload = value["body"]
                if len(payload["pad"]) != payload["size"]:
                    raise ValueError("padding changed")
                self.arrivals.append((now, payload["seq"], payload["sent_at"]))
            except Exception:
                self.corrupted += 1

        self.client.consume(
            self.flow.output_queue("message"), on_message, stop=self.stop, auto_ack=True
        )

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.client.close()


def message_body(seq: int, size: int) -> dict[str, Any]:
    return {"seq": seq, "sent_at": time.time(), "size": size, "pad": "x" * size}


def publish(admin: AdminClient, flow: FlowSpec, cipher: MessageCipher, seq: int, size: int) -> None:
    body = encode(
        {"id": str(uuid.uuid4()), "body": message_body(seq, size), "headers": {}}, cipher, 1
    )
    admin.publish(
        flow.publish_exchange,
        flow.routing_key("input"),
        body,
        Properties(
            headers={"messageId": str(uuid.uuid4()), "protocolVersion": 1, "stepId": "bench"},
            content_type="application/json",
            content_encoding="utf8",
            delivery_mode=1,
        ),
    )


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def proc_usage(pid: int) -> tuple[float, float]:
    """Peak RSS in MB and CPU seconds of a live process."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return peak / 1024, cpu


def run_once(
    case: Case, worker: str, run: int, api: PlatformApiServer, profile: Path | None = None
) -> Result:
    result = Result(case=case.name, worker=worker, run=run)
    flow = FlowSpec.model_validate(
        {
            "flowId": f"bench-{uuid.uuid4().hex[:8]}",
            "function": "passthrough",
            "amqpUrl": AMQP_URL,
            "prefetch": case.prefetch,
        }
    )
    api.add_step(flow.flow_id, flow.step_id, flow.step_data({}))
    cipher = MessageCipher(flow.crypto.password, flow.crypto.iv)
    admin = AdminClient(AMQP_URL, name="bench-admin")
    topology.declare(flow, admin)
    if case.mode == "filled":
        for seq in range(case.messages):
            publish(admin, flow, cipher, seq, case.size)
    collector = Collector(flow, cipher)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELASTICIO_")}
    env.update(flow.worker_env(api.url))
    env.update(
        {
            "ELASTICIO_API_USERNAME": api.state.username,
            "ELASTICIO_API_KEY": api.state.password,
            "ELASTICIO_DATA_RATE_LIMIT": UNLIMITED,
            "ELASTICIO_ERROR_RATE_LIMIT": UNLIMITED,
            "ELASTICIO_SNAPSHOT_RATE_LIMIT": UNLIMITED,
            # "ours@DIR": the runtime of another checkout (git worktree), for an A/B run
            "PYTHONPATH": worker.partition("@")[2] or str(ROOT),
            "LOG_FORMAT": "json",
        }
    )
    command, cwd = worker_command(worker)
    if profile is not None and worker != "node":
        profile.mkdir(parents=True, exist_ok=True)
        out = profile / f"{slug(case.name)}-{worker}-{run + 1}.txt"
        command = [
            PY_SPY,
            "record",
            "--format",
            "raw",
            "--rate",
            "1000",
            "--gil",
            "-o",
            str(out),
            "--",
        ]
        command += worker_command(worker)[0]
    spawned = time.time()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        if case.mode == "paced":
            _pace(case, admin, flow, cipher, collector)
        deadline = time.monotonic() + 30 + case.messages * (0.02 if case.size > 1000 else 0.005)
        while len(collector.arrivals) < case.messages and time.monotonic() < deadline:
            if process.poll() is not None:
                result.error = f"worker exited with {process.returncode}"
                break
            time.sleep(0.01)
        time.sleep(0.3)  # anything duplicated arrives now
        if process.poll() is None:
            result.rss_mb, cpu = proc_usage(process.pid)
            result.cpu_per_1000 = cpu / max(1, case.messages) * 1000
    finally:
        if profile is None:
            process.terminate()
        else:  # py-spy writes its profile once the worker under it exits
            for child in children(process.pid):
                os.kill(child, signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        collector.close()
        topology.remove(flow, admin)
        admin.close()
    _summarise(result, case, collector, spawned)
    if result.lost and not result.error:
        result.error = stderr.decode(errors="replace")[-500:]
    return result


def _pace(
    case: Case, admin: AdminClient, flow: FlowSpec, cipher: MessageCipher, collector: Collector
) -> None:
    # Wait for the worker to be consuming before the clock starts.
    publish(admin, flow, cipher, -1, case.size)
    deadline = time.monotonic() + 30
    while not collector.arrivals and time.monotonic() < deadline:
        time.sleep(0.01)
    collector.arrivals.clear()
    interval = 1 / case.rate
    start = time.monotonic()
    for seq in range(case.messages):
        target = start + seq * interval
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publish(admin, flow, cipher, seq, case.size)


def _summarise(result: Result, case: Case, collector: Collector, spawned: float) -> None:
    arrivals = sorted(a for a in collector.arrivals if a[1] >= 0)
    seqs = [a[1] for a in arrivals]
    unique = set(seqs)
    result.lost = case.messages - len(unique)
    result.duplicated = len(seqs) - len(unique)
    result.corrupted = collector.corrupted
    if not arrivals:
        return
    if case.mode == "filled":
        result.startup_s = arrivals[0][0] - spawned
        skip = len(arrivals) // 20
        window = arrivals[skip:]
        span = window[-1][0] - window[0][0]
        result.rate = (len(window) - 1) / span if span > 0 else 0.0
    else:
        latencies = sorted((a[0] - a[2]) * 1000 for a in arrivals)
        result.p50_ms = statistics.median(latencies)
        result.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        result.rate = case.rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark the worker against the Node.js sailor and a bare pika loop."
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run, fewer messages")
    parser.add_argument("--workers", default="ours,pika,node")
    parser.add_argument("--cases", default="", help="comma-separated substrings of case names")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record every Python worker with py-spy (collapsed stacks into this folder)",
    )
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    workers = [w.strip() for w in args.workers.split(",") if w.strip()]
    if "node" in workers and not NODE_SAILOR.exists():
        sys.exit("the Node.js sailor is not installed: run scripts/bench (it runs npm ci)")
    selected = [
        c
        for c in cases(args.quick)
        if not args.cases or any(s.strip() in c.name for s in args.cases.split(","))
    ]
    api = PlatformApiServer(username="bench", password="bench-password").start()
    results: list[Result] = []
    try:
        for case in selected:
            for run in range(runs):
                for worker in workers:  # interleaved, so drift hits every worker alike
                    result = run_once(case, worker, run, api, args.profile)
                    results.append(result)
                    print(
                        f"{case.name:34} {worker:5} run {run + 1}: {result.rate:9.1f} msg/s "
                        f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:6.2f} ms "
                        f"rss {result.rss_mb:6.1f} MB start {result.startup_s:5.2f} s "
                        f"lost {result.lost} dup {result.duplicated} bad {result.corrupted}"
                        + (f" ERROR {result.error[:200]}" if result.error else ""),
                        flush=True,
                    )
    finally:
        api.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "raw.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    from bench.report import chart, markdown

    (RESULTS / "report.md").write_text(markdown(results, runs))
    chart(results, RESULTS / "throughput.png", runs)
    print((RESULTS / "report.md").read_text())


if __name__ == "__main__":
    main()
