"""How long each outage takes to become a clear error: measured against its documented bound.

    .venv/bin/python -m bench.outages [--quick]

Servers on 127.0.0.1 that misbehave the way real ones do during outages (a token endpoint
or an API that never answers, or trickles its answer a byte every 50 ms; a lock store that
accepts connections and never answers, or refuses them), called through the same code a
step uses (``AuthorizedSession``, the token client, the REST connector's ``httpRequest``,
the platform API client, the Redis lock). For each case: the bound the README documents,
the time to the error, and the error's first words (which must name the server).
``--quick`` shortens the two 30 s token-endpoint cases to a 3 s token timeout.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime.auth import AuthorizedSession
from runtime.auth.cache import CredentialCache
from runtime.auth.redis_lock import RedisLock
from runtime.auth.token_client import TOKEN_TIMEOUT
from runtime.auth.use import credential_use
from runtime.platform import api as platform_api
from runtime.testing import run_step_outcome

_STOP = threading.Event()


class _Misbehaving(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        try:
            if "silent" in self.path:
                _STOP.wait(600)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(1024 * 1024))
            self.end_headers()
            while not _STOP.is_set():
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            return


@contextmanager
def serving() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _STOP.set()
        server.shutdown()
        server.server_close()
        _STOP.clear()


@contextmanager
def silent_tcp() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return  # closed

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        for connection in held:
            connection.close()
        listener.close()


def timed(call: Callable[[], Any]) -> tuple[float, str]:
    started = time.monotonic()
    try:
        outcome = call()
    except Exception as exc:
        return time.monotonic() - started, f"{type(exc).__name__}: {exc}"
    return time.monotonic() - started, f"no error: {outcome!r}"[:200]


def token_refresh(url: str, seconds: float) -> Callable[[], Any]:
    credential = {
        "type": "oauth2", "clientId": "c", "clientSecret": "bench-secret",
        "tokenUrl": url, "refreshToken": "rt-bench", "accessToken": "at-bench",
        "expiresAt": "2000-01-01T00:00:00Z",
    }  # fmt: skip
    session = AuthorizedSession(
        credential_use(credential, cache=CredentialCache(), token_timeout=seconds),
        on_keys=lambda keys: None,
    )
    return lambda: session.get(url.replace("/token", "/api"))


def step_call(base: str, path: str, timeout_ms: int) -> Callable[[], Any]:
    cfg = {
        "type": "bearer", "token": "bench-token", "baseUrl": base, "method": "GET",
        "url": path, "requestTimeoutPeriod": timeout_ms, "errorPolicy": "throwError",
    }  # fmt: skip

    def call() -> str:
        events, _ = run_step_outcome("httpRequest", cfg=cfg)
        raise RuntimeError(events[0].payload.get("message", events[0].kind))

    return call


def cases(base: str, quick: bool) -> list[tuple[str, float, Callable[[], Any]]]:
    token_seconds = 3.0 if quick else TOKEN_TIMEOUT
    session = AuthorizedSession({"type": "none"}, timeout=2, retries=0)
    platform = platform_api.PlatformApi(base, "user", "key", attempts=1)
    return [
        ("token endpoint silent", token_seconds, token_refresh(f"{base}/silent/token", token_seconds)),
        ("token endpoint trickling", token_seconds, token_refresh(f"{base}/trickle/token", token_seconds)),
        ("ctx.http, API trickling its answer (timeout=2)", 2.0, lambda: session.get(f"{base}/trickle")),
        ("ctx.http, API silent (timeout=2)", 2.0, lambda: session.get(f"{base}/silent")),
        ("httpRequest, API trickling (requestTimeoutPeriod 1000: body 3 s)", 3.0,
         step_call(base, "/trickle/records/1", 1000)),
        ("httpRequest, API silent, relative URL (requestTimeoutPeriod 1000)", 1.0,
         step_call(base, "/silent/records/1", 1000)),
        ("platform API trickling (whole call 60 s)", platform_api.CALL_SECONDS,
         lambda: platform.step("flow", "step")),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 3 s token timeout")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, str]] = []
    with serving() as base:
        for name, bound, call in cases(base, args.quick):
            elapsed, error = timed(call)
            rows.append((name, bound, elapsed, error))
            print(f"{name}: {elapsed:.2f} s (bound {bound:g} s): {error[:160]}", flush=True)
    with silent_tcp() as port:
        lock = RedisLock(f"redis://127.0.0.1:{port}/0", wait=60)
        elapsed, error = timed(lambda: lock.hold("account:bench").__enter__())
        rows.append(("Redis accepting, never answering", 2.0, elapsed, error))
    refused = RedisLock("redis://127.0.0.1:1/0", wait=60)
    elapsed, error = timed(lambda: refused.hold("account:bench").__enter__())
    rows.append(("Redis refusing connections", 2.0, elapsed, error))
    print("\n| case | bound | time to error | error |\n|---|---|---|---|")
    for name, bound, elapsed, error in rows:
        print(f"| {name} | {bound:g} s | {elapsed:.2f} s | {error[:110]} |")


if __name__ == "__main__":
    main()
