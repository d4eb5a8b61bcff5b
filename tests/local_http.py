"""Small HTTP servers on 127.0.0.1 for tests of what our clients do with odd answers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    """Reads the request body, counts the request, and lets ``answer`` reply."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        server: Server = self.server  # type: ignore[assignment]
        with server.lock:
            server.connections += 1

    def answer(self) -> None:
        raise NotImplementedError

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server: Server = self.server  # type: ignore[assignment]
        with server.lock:
            server.counts[self.command] = server.counts.get(self.command, 0) + 1
        self.answer()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[Handler], **state: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.counts: dict[str, int] = {}
        self.connections = 0
        self.lock = threading.Lock()
        for name, value in state.items():
            setattr(self, name, value)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that stopped reading (as it should) breaks our writes: expected here."""


@contextlib.contextmanager
def serving(handler: type[Handler], **state: Any) -> Iterator[Server]:
    with running(Server(handler, **state)) as server:
        yield server


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """Serve on a thread until the block ends (for a server prepared first, as for TLS)."""
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
