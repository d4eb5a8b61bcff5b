"""``python -m runtime platform up|send|tail|env``: the local platform from the command line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from runtime import log
from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.jsonfiles import read_json_object
from runtime.devtools.localplatform import messaging
from runtime.devtools.localplatform.flow import FlowSpec, load_flow
from runtime.devtools.localplatform.graph import GraphFlow
from runtime.devtools.localplatform.graph_files import is_graph_file, load_graph
from runtime.devtools.localplatform.running import FlowRunner
from runtime.devtools.localplatform.schedule import tick
from runtime.devtools.stopping import stops_on_signals
from runtime.errors import ConfigError
from runtime.redact import redact
from runtime.worker.amqp import AdminClient, broker_reachable
from runtime.worker.transport import Properties

OUTPUTS = ("message", "error", "snapshot", "keys", "reply", "rebound")


def _load(path: str, amqp_url: str | None, lock_url: str | None = None) -> FlowSpec | GraphFlow:
    """A one-step flow file, or a whole flow, with the command line's overrides."""
    data = read_json_object(path, what="flow")
    if not is_graph_file(data):
        return _flow(path, amqp_url, lock_url)
    graph = load_graph(path)
    local = _overrides(amqp_url, lock_url)
    if local:
        graph = graph.model_copy(update={"local": graph.local.model_copy(update=local)})
    return graph


def _overrides(amqp_url: str | None, lock_url: str | None) -> dict[str, str]:
    """What the command line (or ``RABBITMQ_URL``) sets over a flow file's own."""
    changes: dict[str, str] = {}
    url = amqp_url or os.environ.get("RABBITMQ_URL")
    if url:
        changes["amqp_url"] = url
    if lock_url is not None:
        changes["credential_lock_url"] = lock_url
    return changes


def _step(
    path: str, amqp_url: str | None, lock_url: str | None = None, node: str | None = None
) -> FlowSpec:
    """The step a command acts on: a one-step flow's, or a node of a whole flow."""
    return _node_of(_load(path, amqp_url, lock_url), node)


def _node_of(loaded: FlowSpec | GraphFlow, node: str | None) -> FlowSpec:
    if isinstance(loaded, FlowSpec):
        return loaded
    steps = loaded.steps()
    chosen = node or loaded.first.id
    if chosen not in steps:
        raise ConfigError(f"flow {loaded.id} has no node {chosen!r} (nodes: {', '.join(steps)})")
    return steps[chosen]


def _flow(path: str, amqp_url: str | None, lock_url: str | None = None) -> FlowSpec:
    flow = load_flow(path)
    changes = _overrides(amqp_url, lock_url)
    return flow.model_copy(update=changes) if changes else flow


def _require_broker(flow: FlowSpec) -> None:
    if not broker_reachable(flow.amqp_url):
        raise ConfigError(
            f"no RabbitMQ answers at {flow.amqp_url}: start one (rabbitmq-server -detached, or "
            "docker compose up rabbitmq) or pass --amqp-url"
        )


def run_platform(args: argparse.Namespace) -> int:
    log.configure()
    action = args.platform_command
    if action == "up":
        return _up(args)
    if action == "send":
        return _send(args)
    if action == "tail":
        return _tail(args)
    if action == "validate":
        return _validate(args)
    if action == "trigger":
        return _trigger(args)
    return _env(args)


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.flows:
        try:
            loaded = _load(path, None)
        except ConfigError as exc:
            sys.stdout.write(f"{exc}\n")
            failed += 1
            continue
        if isinstance(loaded, GraphFlow):
            nodes = ", ".join(f"{n.id} ({n.command})" for n in loaded.graph.nodes)
            sys.stdout.write(f"{path}: flow {loaded.id} is valid: {nodes}\n")
        else:
            sys.stdout.write(f"{path}: step {loaded.flow_id}/{loaded.step_id} is valid\n")
    return 1 if failed else 0


@stops_on_signals
def _up(args: argparse.Namespace) -> int:
    loaded = [_load(path, args.amqp_url, args.lock_url) for path in args.flow]
    store = None
    if args.credentials:
        store = CredentialsFile(args.credentials)
        if args.sign_in_demo:
            from runtime.devtools.demo.signin import sign_in

            _wait_for_http(args.sign_in_demo)
            for name in _credentials_named(loaded) or ["demo"]:
                sign_in(args.sign_in_demo, store, name)
    runner = FlowRunner(
        loaded,
        credentials=store,
        host=args.host,
        port=args.port,
        data=Path(args.data) if args.data else None,
        workers=not args.no_workers,
    )
    _require_broker(runner.steps[0])
    try:
        runner.start()
        for flow in runner.unsupervised():
            sys.stdout.write(f"# worker environment for {flow.flow_id}/{flow.step_id}\n")
            for name, value in flow.worker_env(runner.api_url).items():
                sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
        for graph in runner.graphs:
            sys.stdout.write(f"# {runner.describe(graph)}\n")
        sys.stdout.write(f"# local platform API on {runner.api_url}; Ctrl-C or SIGTERM stops it\n")
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    finally:
        runner.stop()


def _trigger(args: argparse.Namespace) -> int:
    loaded = _load(args.flow, args.amqp_url)
    if not isinstance(loaded, GraphFlow) or not loaded.polls:
        raise ConfigError(
            f"{args.flow}: 'trigger' starts a whole flow that polls; send a one-step flow "
            "messages with 'platform send', call a webhook flow at /hook/FLOW_ID"
        )
    step = loaded.step(loaded.first)
    _require_broker(step)
    with AdminClient(step.amqp_url, name="platform-trigger") as admin:
        thread = tick(loaded, admin)
    sys.stdout.write(json.dumps({"flow": loaded.id, "started": thread}) + "\n")
    return 0


def _credentials_named(flows: list[FlowSpec | GraphFlow]) -> list[str]:
    """The credentials-file entries the flows use, as entries or as platform-held secrets."""
    steps: list[FlowSpec] = []
    for flow in flows:
        steps += list(flow.steps().values()) if isinstance(flow, GraphFlow) else [flow]
    names = {s.credential for s in steps if s.credential}
    names |= {str(s.config["secretId"]) for s in steps if s.config.get("secretId")}
    return sorted(names)


def _wait_for_http(url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/api/me", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise ConfigError(f"the demo provider at {url} did not answer within {timeout:g} s")


def _messages(source: str) -> list[Any]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
    text = text.strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ConfigError(f"messages in {source!r} are not JSON: {exc.msg}") from None
    return value if isinstance(value, list) else [value]


def _send(args: argparse.Namespace) -> int:
    flow = _step(args.flow, args.amqp_url, node=args.node)
    _require_broker(flow)
    messages = _messages(args.input)
    with AdminClient(flow.amqp_url, name="platform-send") as admin:
        for message in messages:
            message_id = messaging.send(flow, admin, message)
            sys.stdout.write(json.dumps({"sent": message_id}) + "\n")
    return 0


@stops_on_signals
def _tail(args: argparse.Namespace) -> int:
    loaded = _load(args.flow, args.amqp_url)
    whole = isinstance(loaded, GraphFlow) and args.node is None
    if isinstance(loaded, GraphFlow) and whole:
        steps = list(loaded.steps().values())
    else:
        steps = [_node_of(loaded, args.node)]
    _require_broker(steps[0])
    stop = threading.Event()
    lock = threading.Lock()
    seen = [0]

    def follow(flow: FlowSpec, kind: str) -> None:
        def on_message(body: bytes, properties: Properties) -> None:
            event = messaging.read(flow, kind, body, properties)
            if event["event"] == "updateKeys":
                event["payload"] = redact(event["payload"])
            headers = event.pop("headers", {})
            if whole:
                event = {"step": flow.step_id, "thread": headers.get("threadId"),
                         **event, **_took(headers)}  # fmt: skip
            with lock:
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
                sys.stdout.flush()
                seen[0] += 1
                if args.count and seen[0] >= args.count:
                    stop.set()

        with AdminClient(flow.amqp_url, name="platform-tail") as admin:
            admin.consume(flow.output_queue(kind), on_message, stop=stop)

    threads = [
        threading.Thread(target=follow, args=(step, kind), daemon=True)
        for step in steps
        for kind in OUTPUTS
    ]
    for thread in threads:
        thread.start()
    what = steps[0].flow_id if whole else f"{steps[0].flow_id}/{steps[0].step_id}"
    sys.stderr.write(f"# following the events of {what}; Ctrl-C or SIGTERM stops\n")
    sys.stderr.flush()
    try:
        stop.wait(args.timeout or None)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    return 0


def _took(headers: dict[str, Any]) -> dict[str, Any]:
    """How long the step took over the message (the sailors' ``start`` and ``end``, ms)."""
    start, end = headers.get("start"), headers.get("end")
    if isinstance(start, int | float) and isinstance(end, int | float):
        return {"ms": int(end - start)}
    return {}


def _env(args: argparse.Namespace) -> int:
    flow = _step(args.flow, args.amqp_url, args.lock_url, args.node)
    for name, value in flow.worker_env(args.api_uri).items():
        sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
    return 0
