"""What JSONata costs against {{}} templates in the REST connector, on the same request.

    .venv/bin/python -m bench.jsonata_cost [--requests 1000] [--rounds 5]

The same mapping (URL with an id, a header, a query parameter and a JSON body of four
fields, one a list) written both ways, sent by the connector's ``httpRequest`` code to the
demo API's ``/api/echo`` on 127.0.0.1 with keep-alive. Reported per message, medians over
the rounds: the whole request (mapping, signing, HTTP, parsing the answer), and the mapping
alone (the four fields evaluated, no HTTP), with their ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from requests.adapters import HTTPAdapter

from lib.request_plan import plan_for
from lib.rest_call import run
from lib.templating import scope
from runtime import Context, Message
from runtime.auth import AuthorizedSession
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from runtime.log import get_logger
from runtime.step.events import as_message

MESSAGE = {
    "body": {
        "customer": {"id": 42, "name": "Ada Lovelace", "tier": "gold"},
        "items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}],
    }
}
TEMPLATES = {
    "method": "POST",
    "url": "/echo?customer={{body.customer.id}}",
    "query": '{"tier": "{{body.customer.tier}}"}',
    "headers": '{"X-Customer": "{{body.customer.name}}"}',
    "body": '{"id": "{{body.customer.id}}", "name": "{{body.customer.name}}", '
    '"items": "{{body.items}}", "note": "order of {{body.customer.name}}"}',
}
JSONATA = {
    "method": "POST",
    "url": '"/echo?customer=" & body.customer.id',
    "urlMode": "jsonata",
    "query": '{"tier": body.customer.tier}',
    "queryMode": "jsonata",
    "headers": '{"X-Customer": body.customer.name}',
    "headersMode": "jsonata",
    "body": '{"id": body.customer.id, "name": body.customer.name, "items": body.items, '
    '"note": "order of " & body.customer.name}',
    "bodyMode": "jsonata",
}


def requests_per_message(
    cfg: dict[str, Any], credential: dict[str, Any], msg: Message, count: int, pool: HTTPAdapter
) -> float:
    emitted: list[Any] = []

    def factory(ctx: Context) -> AuthorizedSession:
        return AuthorizedSession(credential, on_keys=lambda keys: None, adapter=pool)

    started = time.perf_counter()
    for _ in range(count):
        ctx = Context(
            deliver=emitted.append, log=get_logger("bench"), cfg=cfg, http_factory=factory
        )
        run(ctx, msg, cfg)
        ctx.http.close()
    elapsed = (time.perf_counter() - started) / count
    if len(emitted) != count or any(e.kind != "data" for e in emitted):
        raise SystemExit(f"a request failed: {[e.payload for e in emitted if e.kind != 'data']}")
    return elapsed


def mapping_per_message(cfg: dict[str, Any], msg: Message, count: int) -> float:
    plan = plan_for(cfg)
    values = {**scope(msg, cfg), "flowVariables": {}}
    started = time.perf_counter()
    for _ in range(count):
        for field in (plan.url, plan.query, plan.headers, plan.body):
            field.value(values)
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    api = DemoApi(ProviderSettings(access_lifetime=3600)).start()
    credential = {
        **api.credential(api.consented_tokens(), expiresIn=3600),
        "baseUrl": f"{api.url}/api",
    }
    msg = as_message(MESSAGE)
    pool = HTTPAdapter(pool_connections=2, pool_maxsize=4)
    configs = {"templates": {**credential, **TEMPLATES}, "jsonata": {**credential, **JSONATA}}
    for cfg in configs.values():  # warm up: compile, connect
        requests_per_message(cfg, credential, msg, 50, pool)
    whole: dict[str, list[float]] = {name: [] for name in configs}
    mapping: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, cfg in configs.items():
            whole[name].append(requests_per_message(cfg, credential, msg, args.requests, pool))
            mapping[name].append(mapping_per_message(cfg, msg, args.requests * 5))
    api.stop()
    w = {name: statistics.median(times) for name, times in whole.items()}
    m = {name: statistics.median(times) for name, times in mapping.items()}
    print(f"requests per round: {args.requests}, rounds: {args.rounds} (medians)")
    print(f"whole request, {{{{}}}} templates : {w['templates'] * 1e6:8.1f} µs/message")
    print(f"whole request, JSONata        : {w['jsonata'] * 1e6:8.1f} µs/message")
    print(f"  ratio JSONata / templates   : {w['jsonata'] / w['templates']:.3f}")
    print(f"mapping only, {{{{}}}} templates  : {m['templates'] * 1e6:8.1f} µs/message")
    print(f"mapping only, JSONata         : {m['jsonata'] * 1e6:8.1f} µs/message")
    print(f"  ratio JSONata / templates   : {m['jsonata'] / m['templates']:.2f}")


if __name__ == "__main__":
    main()
