"""``python -m runtime exec``: one step, one message from files, events printed as JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from runtime import log
from runtime.component import component_root, load_component
from runtime.events import Event, as_message
from runtime.executor import execute
from runtime.jsonfiles import read_json, read_json_object
from runtime.redact import SECRETS
from runtime.steps import load_step


def resolve_root(args: argparse.Namespace) -> Path:
    if args.component:
        return Path(args.component).resolve()
    return component_root(Path.cwd(), os.environ.get("ELASTICIO_COMPONENT_PATH"))


def run_exec(args: argparse.Namespace) -> int:
    log.configure(fmt=args.log_format)
    message: Any = read_json(args.msg, what="message", default={})
    cfg = read_json_object(args.cfg, what="configuration")
    snapshot = read_json_object(args.snapshot, what="snapshot")
    SECRETS.add_from(cfg)
    step = load_step(load_component(resolve_root(args)), args.step)

    def print_event(event: Event) -> None:
        sys.stdout.write(json.dumps(event.as_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()

    outcome = execute(
        step.process,
        as_message(message),
        cfg,
        snapshot,
        handle=print_event,
        timeout=args.timeout,
        step=args.step,
    )
    return 1 if outcome.errors else 0
