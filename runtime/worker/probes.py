"""The worker's HTTP port (``ELASTICIO_METRICS_PORT``): Prometheus metrics and two probes.

    GET /metrics   the registry of ``runtime.metrics``, in Prometheus' text format
    GET /livez     200 while the AMQP I/O loop turns; 503 when it is stuck or dead
                   (restart the container)
    GET /readyz    200 while the worker consumes with both connections open; 503 while
                   it starts, reconnects or stops (send it no traffic, do not restart it)

The probes answer in one line of text that says why, for ``kubectl describe`` and for
``python -m runtime health``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from runtime.log import get_logger

_log = get_logger(__name__)

Check = Callable[[], str | None]
"""Returns None when healthy, else what is wrong, in a few words."""


@dataclass(frozen=True)
class Probes:
    live: Check
    ready: Check


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the worker's own log

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path in ("/livez", "/readyz"):
            check = self.server.probes.live if path == "/livez" else self.server.probes.ready
            problem = _safely(check)
            status, text = (200, "ok") if problem is None else (503, problem)
            self._send(status, f"{text}\n".encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics, /livez or /readyz\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, registry: CollectorRegistry, probes: Probes) -> None:
        # Every interface: the probes come from the kubelet or Docker, not from localhost.
        super().__init__(("0.0.0.0", port), _Handler)  # noqa: S104
        self.registry = registry
        self.probes = probes


def _safely(check: Check) -> str | None:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer
        return f"the check failed: {type(exc).__name__}"


class ProbeServer:
    """Serves the port on a daemon thread until ``close``."""

    def __init__(self, port: int, registry: CollectorRegistry, probes: Probes) -> None:
        self._server = _Server(port, registry, probes)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        _log.info("metrics_listening", port=self.port, paths="/metrics /livez /readyz")
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
