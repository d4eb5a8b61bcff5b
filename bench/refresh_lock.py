"""What the replicas' credential lock costs: per refresh, and per request that needs none.

    .venv/bin/python bench/refresh_lock.py [--refreshes 200] [--requests 2000] [--rounds 3]
                                           [--redis redis://127.0.0.1:6379/0]

Against the demo provider on 127.0.0.1, for each backend (in-process only, a file lock, a
Redis lease with the shared keys):

* a refresh: the access token is expired at the provider, then one GET, which is refused,
  refreshes (lock, re-read, token call, keys saved and shared, unlock) and is sent again;
  the figure is the median time of that whole GET, and the difference to in-process;
* a request that needs no refresh: a GET with a valid token; the figure is the median time
  per request, and the ratio to in-process (the lock is only taken to refresh, so ~1.00).

Each backend runs ``--rounds`` times, interleaved, in one process; medians of the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from runtime.auth import AuthorizedSession
from runtime.auth.cache import CredentialCache
from runtime.auth.lock_store import lock_from_url
from runtime.auth.locks import CredentialLock
from runtime.auth.use import credential_use
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings


def session(api: DemoApi, lock: CredentialLock) -> AuthorizedSession:
    return AuthorizedSession(
        credential_use(
            api.credential(expiresIn=3600),
            cache=CredentialCache(),
            key=f"account:bench-{uuid.uuid4().hex}",
            lock=lock,
        ),
        on_keys=lambda keys: None,
    )


def refresh_times(api: DemoApi, http: AuthorizedSession, count: int) -> float:
    times = []
    for _ in range(count):
        api.book.expire_all()
        started = time.perf_counter()
        http.get("me").raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def request_time(http: AuthorizedSession, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        http.get("me").raise_for_status()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    api = DemoApi(ProviderSettings(access_lifetime=3600)).start()
    folder = tempfile.mkdtemp(prefix="bench-locks-")
    backends: dict[str, Callable[[], CredentialLock]] = {
        "in-process": lambda: lock_from_url(None),
        "file": lambda: lock_from_url(f"file://{Path(folder)}"),
        "redis": lambda: lock_from_url(args.redis, secret="bench-crypto-password"),
    }
    refresh: dict[str, list[float]] = {name: [] for name in backends}
    plain: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(args.rounds):
        for name, make in backends.items():
            http = session(api, make())
            request_time(http, 100)  # warm the connection pool
            plain[name].append(request_time(http, args.requests))
            refresh[name].append(refresh_times(api, http, args.refreshes))
    api.stop()
    base_refresh = statistics.median(refresh["in-process"])
    base_plain = statistics.median(plain["in-process"])
    print(f"refreshes: {args.refreshes} and requests: {args.requests} per round, "
          f"rounds: {args.rounds} (medians)")  # fmt: skip
    print(f"{'backend':<11} {'refresh (401, token call, resend)':>36} {'request, no refresh':>26}")
    for name in backends:
        r, p = statistics.median(refresh[name]), statistics.median(plain[name])
        print(
            f"{name:<11} {r * 1e3:9.2f} ms  (+{(r - base_refresh) * 1e3:5.2f} ms)"
            f"{' ' * 9}{p * 1e6:8.1f} µs  (×{p / base_plain:.3f})"
        )


if __name__ == "__main__":
    main()
