"""The secret registry under a token that rotates on every message (Microsoft-style ``always``).

    .venv/bin/python bench/redaction.py [--refreshes 100000] [--old 2000]

Each simulated refresh registers a new access and refresh token and renews the live
credential's fields, as a worker does per message. At checkpoints it reports how many
values the registry holds, the time to redact one typical log record (the logging
pipeline's ``redact`` of a 12-field event), registrations per second so far, and the
process's resident memory. For comparison in the same run, the previous design (one regular
expression over every value ever seen, rebuilt per registration) runs ``--old`` refreshes.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import time
from pathlib import Path

from runtime.redact import SecretRegistry, redact

RECORD = {
    "timestamp": "2026-11-26T09:00:00.000000Z",
    "level": "info",
    "logger": "component",
    "msg": "http_response",
    "method": "GET",
    "status": 200,
    "bytes": 1234,
    "url": "https://api.example.com/v1/records?page=3&limit=100",
    "messageId": "0f6c1a9e-5e7b-4b7c-9a59-0c1e4b8f3a21",
    "threadId": "4e1f2d3c-aaaa-bbbb-cccc-0123456789ab",
    "flowId": "5f2c1e0b9a8d7c6b5a4f3e2d",
    "stepId": "step_1",
}


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


def redact_time(registry: SecretRegistry, repeats: int = 2000) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        redact(RECORD, registry)
    return (time.perf_counter() - started) / repeats


class OldRegistry:
    """The previous design, for comparison: every value ever seen, one pattern rebuilt each time."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, *values: str) -> None:
        fresh = {v for v in values if v not in self.values}
        if fresh:
            self.values |= fresh
            ordered = sorted(self.values, key=len, reverse=True)
            self.pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def scrub_record(self) -> None:
        for value in RECORD.values():
            if isinstance(value, str) and self.pattern is not None:
                self.pattern.sub("[REDACTED]", value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=100_000)
    parser.add_argument("--old", type=int, default=2000)
    args = parser.parse_args()
    client_secret = "cs-" + secrets.token_urlsafe(24)
    registry = SecretRegistry()
    registry.pin(
        "crypto-password-" + secrets.token_hex(8), "platform-api-key-" + secrets.token_hex(8)
    )
    empty = redact_time(SecretRegistry())
    checkpoints = {0, 1000, 10_000, 50_000, args.refreshes}
    print(f"redacting one log record with an empty registry: {empty * 1e6:.1f} µs")
    print(
        f"{'refreshes':>10} {'values held':>12} {'µs per record':>14} {'registrations/s':>16} {'RSS MB':>8}"
    )
    access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    spent = 0.0
    for done in range(args.refreshes + 1):
        if done in checkpoints:
            rate = (done * 5 / spent) if spent else float("nan")
            print(f"{done:>10} {len(registry):>12} {redact_time(registry) * 1e6:>14.1f} "
                  f"{rate:>16,.0f} {rss_mb():>8.1f}")  # fmt: skip
        if done == args.refreshes:
            break
        started = time.perf_counter()
        registry.add(access, refresh, client_secret)  # the message's cfg, parsed
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        registry.add(access, refresh)  # the token response
        spent += time.perf_counter() - started
    old = OldRegistry()
    started = time.perf_counter()
    for _ in range(args.old):
        old.add(secrets.token_urlsafe(32), secrets.token_urlsafe(32), client_secret)
    old_spent = time.perf_counter() - started
    scrubs = []
    for _ in range(5):
        begun = time.perf_counter()
        for _ in range(20):
            old.scrub_record()
        scrubs.append((time.perf_counter() - begun) / 20)
    print(
        f"previous design after {args.old} refreshes: {len(old.values)} values, "
        f"{statistics.median(scrubs) * 1e6:.1f} µs per record, "
        f"{args.old * 3 / old_spent:,.0f} registrations/s"
    )


if __name__ == "__main__":
    main()
