"""Overhead of AuthorizedSession against a plain requests.Session on the same local API.

    .venv/bin/python bench/auth_overhead.py [--requests 2000] [--rounds 5]

Both sessions call GET /api/me of the demo API on 127.0.0.1 with the same bearer token and
keep-alive; the figure is the median time per request of each, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests

from runtime.auth import AuthorizedSession
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings


def per_request(session: requests.Session, url: str, count: int, headers: dict) -> float:
    started = time.perf_counter()
    for _ in range(count):
        response = session.get(url, headers=headers)
        response.raise_for_status()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    api = DemoApi(ProviderSettings(access_lifetime=3600)).start()
    tokens = api.consented_tokens()
    url = f"{api.url}/api/me"
    plain = requests.Session()
    authorised = AuthorizedSession(
        api.credential(tokens, expiresIn=3600), on_keys=lambda keys: None
    )
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    per_request(plain, url, 200, bearer)  # warm both connection pools
    per_request(authorised, url, 200, {})
    plain_times, auth_times = [], []
    for _ in range(args.rounds):
        plain_times.append(per_request(plain, url, args.requests, bearer))
        auth_times.append(per_request(authorised, url, args.requests, {}))
    api.stop()
    p, a = statistics.median(plain_times), statistics.median(auth_times)
    print(f"requests per round: {args.requests}, rounds: {args.rounds} (medians)")
    print(f"plain requests.Session : {p * 1e6:8.1f} µs/request")
    print(f"AuthorizedSession      : {a * 1e6:8.1f} µs/request")
    print(f"ratio (authorized/plain): {a / p:.3f}  (+{(a - p) * 1e6:.1f} µs/request)")


if __name__ == "__main__":
    main()
