"""The worker benchmark: ours, the bare pika ceiling and the Node.js sailor, in one run.

    scripts/bench                      # everything, 3 runs per case (about 10 minutes)
    scripts/bench --quick              # 1 run, fewer messages: a smoke test of the suite
    .venv/bin/python bench/run.py --help

For each case and worker: a fresh step topology on the machine's RabbitMQ, N encrypted
messages in the platform's format, the worker started as a subprocess (or several replicas
on the one queue) with the platform's environment, every output consumed and decrypted.
Reported: messages per second (sustained, first 5 % excluded), latency p50/p99 (paced mode),
start-up to the first output, peak RSS (summed over replicas) and its growth over the run,
CPU seconds per 1,000 messages, and lost / duplicated / corrupted counts (must be 0).

Three families of cases:

* passthrough: the step emits what it got; ours, the bare pika ceiling (bench/ceiling.py),
  the Node.js sailor;
* API-bound: the step makes one HTTP call per message to bench/node/api.js, which answers
  after a fixed delay; the ceiling is the concurrency limit, prefetch ÷ delay. Every answer
  is checked against its message. One case lets the access token expire every few seconds:
  the API's own count of token calls must be one per expiry, with no refused grant;
* replicas: 1, 2 and 3 worker processes consuming one queue.
Results: bench/results/report.md, bench/results/throughput.png, bench/results/raw.json.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
NODE = shutil.which("node") or "node"
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
    delay_ms: int = 0
    """Above 0: API-bound, one call per message to an API answering after this delay."""
    token_ttl_s: float = 0.0
    """Above 0: the access token expires this often, so the run refreshes it under load."""
    replicas: int = 1
    only: tuple[str, ...] = ()
    """The workers this case applies to (empty: every one asked for)."""

    def limit(self, answer_ms: float) -> float:
        """An API-bound case's ceiling: messages in flight ÷ the time the API takes to answer."""
        return self.prefetch * self.replicas * 1000 / answer_ms


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
    api_only = ("ours", "node", "pika-async")
    # API-bound runs last about 6 s each (1.5 s in --quick) at the concurrency limit.
    seconds = 1.5 if quick else 6.0

    def api(delay_ms: int, prefetch: int, **more: Any) -> Case:
        limit = prefetch * 1000 / delay_ms
        name = f"API {delay_ms} ms, prefetch {prefetch}" + more.pop("suffix", "")
        messages = max(10, int(min(limit, 1200) * seconds))
        return Case(name, 200, prefetch, "filled", messages, delay_ms=delay_ms, **more)

    def replicas(count: int) -> Case:
        name = f"replicas {count}, 200 B, prefetch 10"
        return Case(name, 200, 10, "filled", small, replicas=count, only=("ours", "node"))

    every = [
        Case("200 B, prefetch 1", 200, 1, "filled", small),
        Case("200 B, prefetch 10", 200, 10, "filled", small),
        Case("100 KB, prefetch 1", 100_000, 1, "filled", large),
        Case("100 KB, prefetch 10", 100_000, 10, "filled", large),
        Case("paced 200/s, 200 B, prefetch 1", 200, 1, "paced", 600 if quick else 2000, 200.0),
        *(api(20, p, only=api_only) for p in (1, 10, 50, 200)),
        *(api(200, p, only=api_only) for p in (1, 10, 50, 200)),
        api(20, 50, only=("ours",), token_ttl_s=1.0 if quick else 2.0,
            suffix=", token expiring every 2 s" if not quick else ", token expiring every 1 s"),
        api(20, 200, only=("ours",), token_ttl_s=1.0 if quick else 2.0,
            suffix=", token expiring every 2 s" if not quick else ", token expiring every 1 s"),
        *(replicas(n) for n in (1, 2, 3)),
        # Memory over a long run: RSS growth after start-up must stay flat (≤ 5 MB).
        Case("soak 100,000 msgs, 200 B, prefetch 10", 200, 10, "filled", 100_000,
             only=("ours",)),
    ]  # fmt: skip
    if quick:  # a smoke run of every family, under two minutes
        keep = ("200 B, prefetch 10", "100 KB, prefetch 1", "paced", "API 20 ms, prefetch 10",
                "API 200 ms, prefetch 200", "expiring", "replicas 2")  # fmt: skip
        every = [c for c in every if any(k in c.name for k in keep) and "soak" not in c.name]
    return every


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
"""The lock store of ``ours+replicas``."""
PY_SPY = str(Path(sys.executable).with_name("py-spy"))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


KINDS = ("ours", "pika", "pika-async", "node")


def kind_of(worker: str) -> str:
    """ "ours", "pika", "pika-async" or "node": a worker name without its "@DIR" or "+..."
    variant."""
    return worker.partition("@")[0].split("+")[0]


def worker_command(worker: str) -> tuple[list[str], Path]:
    if kind_of(worker) == "ours":
        return [sys.executable, "-m", "runtime", "run"], BENCH / "python_component"
    if worker == "pika":
        return [sys.executable, str(BENCH / "ceiling.py")], BENCH
    if worker == "pika-async":
        return [sys.executable, str(BENCH / "ceiling_async.py")], BENCH
    return ["node", str(NODE_SAILOR)], BENCH / "node" / "component"


class Collector:
    """Consumes the data queue, decrypting every output and timing its arrival."""

    def __init__(self, flow: FlowSpec, cipher: MessageCipher, answers: bool = False) -> None:
        self.flow = flow
        self.answers = answers
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
                if self.answers and payload["answer"]["seq"] != payload["seq"]:
                    raise ValueError("the API's answer is for another message")
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


def proc_usage(pid: int) -> tuple[float, float, float]:
    """Peak RSS and current RSS in MB, and CPU seconds, of a live process."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    now = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return peak / 1024, now / 1024, cpu


class RssSampler:
    """The summed RSS of the workers every quarter second: a flat profile or a growing one."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                self.samples.append(sum(proc_usage(pid)[1] for pid in self.pids))
            except (OSError, StopIteration, RuntimeError):
                return  # a worker exited: the run reports it

    def growth(self) -> float:
        """MB gained from a quarter into the run to its end (start-up excluded)."""
        self.stop.set()
        self.thread.join(2)
        if len(self.samples) < 8:
            return 0.0
        return self.samples[-1] - self.samples[len(self.samples) // 4]


class Api:
    """bench/node/api.js in its own process: the SaaS API of the API-bound cases."""

    def __init__(self, delay_ms: int, token_ttl_s: float) -> None:
        env = {**os.environ, "DELAY_MS": str(delay_ms), "TOKEN_TTL_S": str(token_ttl_s)}
        self.process = subprocess.Popen(
            [NODE, str(BENCH / "node" / "api.js")], env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        first = json.loads(self.process.stdout.readline())
        self.port = int(first["port"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.time()
        self.answer_ms = self._answer_ms(first["access_token"], delay_ms)
        self.config = {
            "apiUrl": self.url,
            "type": "oauth2",
            "clientId": "bench-client",
            "clientSecret": "bench-secret",
            "tokenUrl": f"{self.url}/token",
            "accessToken": first["access_token"],
            "refreshToken": first["refresh_token"],
        }
        if token_ttl_s:
            expires = datetime.fromtimestamp(self.started + token_ttl_s, UTC)
            self.config["expiresAt"] = expires.isoformat().replace("+00:00", "Z")

    def _answer_ms(self, token: str, delay_ms: int) -> float:
        """The API's own answer time, one bare call after another: its delay plus overhead."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        times = []
        for _ in range(max(3, 400 // delay_ms)):
            started = time.perf_counter()
            connection.request("GET", "/items/-1", headers={"Authorization": f"Bearer {token}"})
            connection.getresponse().read()
            times.append((time.perf_counter() - started) * 1000)
        connection.close()
        return statistics.median(times)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as answer:  # noqa: S310 - our http URL
            stats: dict[str, Any] = json.loads(answer.read())
        return stats

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_once(
    case: Case, worker: str, run: int, api: PlatformApiServer, profile: Path | None = None
) -> Result:
    result = Result(case=case.name, worker=worker, run=run)
    saas = Api(case.delay_ms, case.token_ttl_s) if case.delay_ms else None
    flow = FlowSpec.model_validate(
        {
            "flowId": f"bench-{uuid.uuid4().hex[:8]}",
            # "ours+async": the same steps written as async def (the event loop)
            "function": ("callApi" if saas else "passthrough")
            + ("Async" if "+async" in worker else ""),
            "amqpUrl": AMQP_URL,
            "prefetch": case.prefetch,
        }
    )
    api.add_step(flow.flow_id, flow.step_id, flow.step_data(saas.config if saas else {}))
    cipher = MessageCipher(flow.crypto.password, flow.crypto.iv)
    admin = AdminClient(AMQP_URL, name="bench-admin")
    topology.declare(flow, admin)
    if case.mode == "filled":
        for seq in range(case.messages):
            publish(admin, flow, cipher, seq, case.size)
    collector = Collector(flow, cipher, answers=saas is not None)
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
            # "ours+metrics": Prometheus metrics on (any free port), to measure their cost
            **({"ELASTICIO_METRICS_PORT": "0"} if "+metrics" in worker else {}),
            # "ours+replicas": the word between replicas on (a Redis lock store), for its cost
            **({"ELASTICIO_CREDENTIAL_LOCK_URL": REDIS_URL} if "+replicas" in worker else {}),
            "LOG_FORMAT": "json",
        }
    )
    command, cwd = worker_command(worker)
    if profile is not None and worker != "node":
        profile.mkdir(parents=True, exist_ok=True)
        out = profile / f"{slug(case.name)}-{slug(worker)}-{run + 1}.txt"
        # --nonblocking: pausing the worker for each sample left only its imports in the
        # profile on some kernels, and slows what it measures.
        command = [PY_SPY, "record", "--format", "raw", "--rate", "1000", "--gil",
                   "--nonblocking", "-o", str(out), "--", *command]  # fmt: skip
    spawned = time.time()
    processes = [
        subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(case.replicas)
    ]
    sampler = RssSampler([p.pid for p in processes])
    stderr = b""
    try:
        if case.mode == "paced":
            _pace(case, admin, flow, cipher, collector)
        expected = (
            min(case.limit(saas.answer_ms), 2000.0)
            if saas
            else (200.0 if case.size > 1000 else 500.0)
        )
        deadline = time.monotonic() + 30 + 3 * case.messages / expected
        while len(collector.arrivals) < case.messages and time.monotonic() < deadline:
            exited = [p for p in processes if p.poll() is not None]
            if exited:
                result.error = f"worker exited with {exited[0].returncode}"
                break
            time.sleep(0.01)
        time.sleep(0.3)  # anything duplicated arrives now
        result.extra["rss_growth_mb"] = round(sampler.growth(), 1)
        if all(p.poll() is None for p in processes):
            usage = [proc_usage(p.pid) for p in processes]
            result.rss_mb = sum(u[0] for u in usage)
            result.cpu_per_1000 = sum(u[2] for u in usage) / max(1, case.messages) * 1000
        if saas is not None:
            result.extra["api"] = saas.stats()
            result.extra["answer_ms"] = round(saas.answer_ms, 2)
            result.extra["limit"] = round(case.limit(saas.answer_ms), 1)
    finally:
        for process in processes:
            if profile is None:
                process.terminate()
            else:  # py-spy writes its profile once the worker under it exits
                for child in children(process.pid):
                    os.kill(child, signal.SIGTERM)
        for process in processes:
            try:
                stderr += process.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                process.kill()
                stderr += process.communicate()[1]
        collector.close()
        topology.remove(flow, admin)
        admin.close()
        if saas is not None:
            saas.stop()
    _summarise(result, case, collector, spawned)
    _check_api(result, case)
    if result.lost:
        result.error = f"{result.error} {stderr.decode(errors='replace')[-500:]}".strip()
    return result


def _check_api(result: Result, case: Case) -> None:
    """The API's own counts: every message called it once, and one token call per expiry."""
    stats = result.extra.get("api")
    if not stats:
        return
    problems = []
    if stats["answered"] < case.messages:
        problems.append(f"the API answered {stats['answered']} calls for {case.messages} messages")
    if stats["invalidGrants"]:
        problems.append(f"{stats['invalidGrants']} refresh(es) refused as invalid_grant")
    if case.token_ttl_s:
        times = stats["tokenCallTimes"]
        # A token minted at t expires at t + ttl: one call per lifetime that ran out in the run.
        lifetimes = result.extra["run_seconds"] / case.token_ttl_s
        result.extra["token_calls"] = len(times)
        result.extra["lifetimes"] = round(lifetimes, 1)
        if len(times) > int(lifetimes) + 2:
            problems.append(f"{len(times)} token calls for {lifetimes:.1f} token lifetimes")
        gaps = [b - a for a, b in itertools.pairwise(times)]
        if gaps and min(gaps) < case.token_ttl_s / 2:
            problems.append(f"two token calls {min(gaps) * 1000:.0f} ms apart")
    elif stats["tokenCalls"]:
        problems.append(f"{stats['tokenCalls']} token calls with a token that does not expire")
    if problems and not result.error:
        result.error = "; ".join(problems)


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
    highest, reordered = -1, 0
    for seq in seqs:
        reordered += seq < highest
        highest = max(highest, seq)
    result.extra["reordered"] = reordered
    if reordered and case.prefetch == 1 and case.replicas == 1 and not result.error:
        result.error = f"{reordered} outputs out of order with one consumer at prefetch 1"
    result.extra["run_seconds"] = arrivals[-1][0] - spawned
    if case.mode == "filled":
        result.startup_s = arrivals[0][0] - spawned
        skip = len(arrivals) // 20
        window = arrivals[skip:]
        span = window[-1][0] - window[0][0]
        result.rate = (len(window) - 1) / span if span > 0 else 0.0
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(window)]
        result.extra["max_gap_ms"] = round(max(gaps, default=0.0) * 1000, 1)
    else:
        latencies = sorted((a[0] - a[2]) * 1000 for a in arrivals)
        result.p50_ms = statistics.median(latencies)
        result.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        result.rate = case.rate


def _interrupted(_signal: int, _frame: Any) -> None:
    # A killed bench must still stop its workers and the API (run_once's finally does).
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(
        description="Benchmark the worker against the Node.js sailor and a bare pika loop."
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run, fewer messages")
    parser.add_argument("--workers", default="ours,ours+async,pika,pika-async,node")
    parser.add_argument(
        "--cases",
        default="",
        help="substrings of case names, comma-separated (semicolons when names hold commas); "
        "=NAME for exactly one case",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record every Python worker with py-spy (collapsed stacks into this folder)",
    )
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    workers = [w.strip() for w in args.workers.split(",") if w.strip()]
    unknown = [w for w in workers if kind_of(w) not in KINDS]
    if unknown:
        sys.exit(f"unknown workers {unknown}: each is one of {', '.join(KINDS)}, "
                 "with an optional +async, +metrics, +replicas or @DIR")  # fmt: skip
    if "node" in workers and not NODE_SAILOR.exists():
        sys.exit("the Node.js sailor is not installed: run scripts/bench (it runs npm ci)")
    if args.profile and not Path(PY_SPY).exists():
        sys.exit("--profile needs py-spy in .venv: run scripts/bench (it installs it)")
    wanted = [w.strip() for w in args.cases.split(";" if ";" in args.cases else ",") if w.strip()]
    selected = [
        c
        for c in cases(args.quick)
        if not wanted or any(c.name == w[1:] if w.startswith("=") else w in c.name for w in wanted)
    ]
    api = PlatformApiServer(username="bench", password="bench-password").start()
    results: list[Result] = []
    try:
        for case in selected:
            for run in range(runs):
                for worker in workers:  # interleaved, so drift hits every worker alike
                    if case.only and kind_of(worker) not in case.only:
                        continue
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
