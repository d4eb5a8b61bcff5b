"""Which async HTTP client ``ctx.http`` is built on: aiohttp and httpx, side by side.

    .venv/bin/pip install aiohttp httpx     # httpx only for this comparison
    .venv/bin/python -m bench.async_clients [--requests 4000] [--rounds 3]

Against bench/node/api.js (an API answering after 20 ms, in its own Node.js process, so it
costs these 2 cores little), each client makes ``--requests`` signed GETs, ``concurrency``
of them in flight at once, on one event loop; requests with a thread each (what a sync step
does) is the baseline. Reported per client and concurrency, medians of the rounds run
interleaved: requests per second, and CPU milliseconds per request of this process (the
cores are the limit when hundreds of messages are in flight, not the API).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
NODE = shutil.which("node") or "node"


class Api:
    def __init__(self, delay_ms: int) -> None:
        env = {**os.environ, "DELAY_MS": str(delay_ms), "TOKEN_TTL_S": "0"}
        self.process = subprocess.Popen(
            [NODE, str(BENCH / "node" / "api.js")], env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        first = json.loads(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{first['port']}"
        self.headers = {"Authorization": f"Bearer {first['access_token']}"}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def _bounded(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def guarded(seq: int) -> None:
        async with slots:
            await one(seq)

    await asyncio.gather(*(guarded(seq) for seq in range(count)))


async def with_aiohttp(api: Api, count: int, concurrency: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(seq: int) -> None:
            async with session.get(f"{api.url}/items/{seq}", headers=api.headers) as answer:
                assert answer.status == 200
                await answer.read()

        await _bounded(count, concurrency, one)


async def with_httpx(api: Api, count: int, concurrency: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(seq: int) -> None:
            answer = await client.get(f"{api.url}/items/{seq}", headers=api.headers)
            assert answer.status_code == 200

        await _bounded(count, concurrency, one)


def with_threads(api: Api, count: int, concurrency: int) -> None:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=concurrency))

    def one(seq: int) -> None:
        answer = session.get(f"{api.url}/items/{seq}", headers=api.headers, timeout=30)
        assert answer.status_code == 200

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))


def measure(run: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="50,200")
    args = parser.parse_args()
    api = Api(20)
    clients: dict[str, Callable[[int, int], Any]] = {
        "aiohttp": lambda n, c: asyncio.run(with_aiohttp(api, n, c)),
        "httpx": lambda n, c: asyncio.run(with_httpx(api, n, c)),
        "requests + threads": lambda n, c: with_threads(api, n, c),
    }
    figures: dict[tuple[str, int], list[tuple[float, float]]] = {}
    try:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            for _ in range(args.rounds):
                for name, client in clients.items():  # interleaved: drift hits all alike
                    client(200, concurrency)  # connections opened, code warm
                    wall, cpu = measure(
                        lambda c=client, n=concurrency: c(args.requests, n)  # type: ignore[misc]
                    )
                    figures.setdefault((name, concurrency), []).append(
                        (args.requests / wall, cpu * 1000 / args.requests)
                    )
    finally:
        api.stop()
    print("| client | in flight | requests/s | CPU ms per request |\n|---|---|---|---|")
    for (name, concurrency), runs in figures.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {name} | {concurrency} | {rate:,.0f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
