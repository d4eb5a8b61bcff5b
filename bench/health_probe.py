"""CPU of one ``python -m runtime health`` call, as a container engine makes it.

    .venv/bin/python -m bench.health_probe [--calls 30] [--image eio-runtime-worker]

Each call asks a real probe server (the worker's own, on 127.0.0.1) and must answer
healthy. CPU is the children's user + system time per call (``getrusage``), against two
baselines in the same run: a bare ``python -c pass`` (the interpreter's own start-up) and
importing what the probe imported before it was made light (the command line and the
worker). With ``--image``, the same call inside a container of that image (``docker exec``),
where the runtime is installed as a plain package, as deployed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys

from prometheus_client import CollectorRegistry

from runtime.worker.probes import Probes, ProbeServer

PROBE = ["-m", "runtime", "health"]
BARE = ["-c", "pass"]
HEAVY = ["-c", "import runtime.cli, runtime.worker.run, runtime.worker.probes"]


def cpu_per_call(command: list[str], calls: int, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(calls):
        subprocess.run(command, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / calls


def in_container(image: str, calls: int) -> float:
    """CPU per call inside a container: the container's own accounting of its processes."""
    name = f"bench-health-{os.getpid()}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "-e", "ELASTICIO_METRICS_PORT=",
         "--entrypoint", "sleep", image, "600"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        script = (
            "import resource, subprocess, sys\n"
            f"for _ in range({calls}):\n"
            "    subprocess.run([sys.executable, '-m', 'runtime', 'health'], capture_output=True)\n"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            f"print((u.ru_utime + u.ru_stime) / {calls})\n"
        )
        out = subprocess.run(
            ["docker", "exec", name, "python", "-c", script],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return float(out.strip())
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--image", help="also measure inside a container of this image")
    args = parser.parse_args()

    server = ProbeServer(0, CollectorRegistry(), Probes(live=lambda: None, ready=lambda: None))
    server.start()
    env = {**os.environ, "ELASTICIO_METRICS_PORT": str(server.port)}
    try:
        probe = cpu_per_call([sys.executable, *PROBE], args.calls, env)
        bare = cpu_per_call([sys.executable, *BARE], args.calls, env)
        heavy = cpu_per_call([sys.executable, *HEAVY], args.calls, env)
    finally:
        server.close()
    print(f"CPU per call, {args.calls} calls each (this machine, .venv):")
    print(f"  python -m runtime health   {probe * 1000:6.1f} ms")
    print(f"  python -c pass (baseline)  {bare * 1000:6.1f} ms  probe = {probe / bare:.2f}x")
    print(f"  the old probe's imports    {heavy * 1000:6.1f} ms  probe = {probe / heavy:.2f}x")
    if args.image:
        inside = in_container(args.image, args.calls)
        print(f"  in {args.image} (unhealthy: no worker there) {inside * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
