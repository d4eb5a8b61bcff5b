"""A small JSON-over-HTTP request handler for the runtime's local servers (demo API, platform).

Keep-alive friendly: one write per response and no Nagle, or keep-alive clients stall on
delayed ACKs between the header and body packets (40 ms a request).
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the servers log what matters themselves (and URLs may carry codes)."""

    def handle_method(self, method: str) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self.handle_method("GET")

    def do_POST(self) -> None:
        self.handle_method("POST")

    def do_PUT(self) -> None:
        self.handle_method("PUT")

    def do_PATCH(self) -> None:
        self.handle_method("PATCH")

    def do_DELETE(self) -> None:
        self.handle_method("DELETE")

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Send a JSON body (or raw bytes) with its length, in one write."""
        extra = dict(headers or {})
        if isinstance(body, bytes):
            payload = body
            extra.setdefault("Content-Type", "application/octet-stream")
        else:
            payload = json.dumps(body).encode()
            extra.setdefault("Content-Type", "application/json")
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class JsonServer(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog for bursts (50 clients connecting at
    once overflow the default of 5, and the dropped SYNs come back seconds later)."""

    daemon_threads = True
    request_queue_size = 128

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        """Stops within 50 ms of ``shutdown``: the default half second, once per server a
        test starts, added up to a minute of the test suite."""
        super().serve_forever(poll_interval)
