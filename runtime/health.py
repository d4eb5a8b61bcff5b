"""``python -m runtime health``: is the worker in this container healthy?

A container engine runs this every few seconds, so it imports the standard library's
lightest modules only (``runtime/__main__.py`` sends ``health`` here before the command
line is built). With ``ELASTICIO_METRICS_PORT`` set it asks the worker's probe on that port;
without it, whether the worker touched its health file lately.

Exit codes: 0 healthy, 1 not, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence

HEALTH_FILE_NAME = "runtime-worker.health"
PROBE_TIMEOUT = 4.0
"""For the whole answer: below the 5 s a container engine gives a health check by default."""
_MAX_ANSWER = 4096


def default_health_file() -> str:
    import tempfile  # only here: importing it costs more than the rest of the probe

    return os.path.join(tempfile.gettempdir(), HEALTH_FILE_NAME)


def healthy(path: str, max_age: float = 30.0) -> bool:
    """Whether a worker touched its health file recently (it is consuming)."""
    try:
        return time.time() - os.stat(path).st_mtime < max_age
    except OSError:
        return False


def ask_probe(port: int, probe: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Ask a worker's probe on this machine: healthy or not, and its one line of why.

    A plain HTTP/1.0 exchange on a socket: the probe answers a few bytes on loopback, and
    ``urllib`` alone would cost more CPU to import than the whole check."""
    where = f"http://127.0.0.1:{port}/{probe}z"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(f"GET /{probe}z HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            answer = _read_answer(connection, time.monotonic() + timeout)
    except TimeoutError:
        return False, f"no whole answer from {where} within {timeout:g} s"
    except OSError as exc:
        return False, f"no answer from {where} ({(exc.strerror or str(exc)).lower()})"
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    why = body.decode(errors="replace").strip() or head.decode(errors="replace")[:80]
    if not why:
        why = f"{where} closed the connection without an answer"
    return status == [b"200"], why


def _read_answer(connection: socket.socket, deadline: float) -> bytes:
    """Up to a few KB, within one deadline for the whole answer, however it trickles."""
    answer = b""
    while len(answer) < _MAX_ANSWER:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        connection.settimeout(left)
        chunk = connection.recv(_MAX_ANSWER)
        if not chunk:
            break
        answer += chunk
    return answer


def check(env: Mapping[str, str], probe: str, max_age: float) -> tuple[bool, str]:
    port = env.get("ELASTICIO_METRICS_PORT", "").strip()
    if port.isdigit() and int(port) > 0:
        return ask_probe(int(port), probe)
    path = env.get("ELASTICIO_HEALTH_FILE") or default_health_file()
    return healthy(path, max_age), path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-age", type=float, default=30.0, help="seconds (health file)")
    parser.add_argument(
        "--probe", choices=("ready", "live"), default="ready", help="which probe to ask"
    )


def report(env: Mapping[str, str], probe: str, max_age: float) -> int:
    """Say healthy or not, and why, on stdout; the exit code to end with."""
    ok, why = check(env, probe, max_age)
    sys.stdout.write(f"{'healthy' if ok else 'unhealthy'}: {why}\n")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runtime health",
        description="With ELASTICIO_METRICS_PORT set, asks the worker's probe on that port "
        "(/readyz, or /livez with --probe live). Without it, checks the health file "
        "(ELASTICIO_HEALTH_FILE) the worker touches every second while it consumes. "
        "Exit code 0 healthy, 1 not.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return report(os.environ, args.probe, args.max_age)
