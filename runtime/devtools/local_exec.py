"""``python -m runtime exec``: one step, one message from files, events printed as JSON lines.

With ``--credential NAME`` the named entry of a credentials file is merged into ``cfg``,
and the keys of every ``updateKeys`` event are written back to that entry, so a rotated
refresh token survives the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from runtime import log
from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.jsonfiles import read_json, read_json_object
from runtime.errors import ConfigError
from runtime.platform.secrets import from_env as secrets_from_env
from runtime.redact import SECRETS, redact
from runtime.step.component import chosen_root, load_component
from runtime.step.events import Event, as_message
from runtime.step.executor import execute
from runtime.step.http import CredentialStores, session_factory
from runtime.step.loader import load_step
from runtime.step.run_state import StepCall

DEFAULT_CREDENTIALS_FILE = "credentials.json"


def credentials_file(path: str | None) -> CredentialsFile:
    chosen = path or os.environ.get("RUNTIME_CREDENTIALS_FILE") or DEFAULT_CREDENTIALS_FILE
    return CredentialsFile(chosen)


def _saved_entry(
    cfg: dict[str, Any], store: CredentialsFile, name: str
) -> Callable[[], dict[str, Any]]:
    """Re-reads the entry as saved now, laid over the step's configuration."""
    return lambda: {**cfg, **store.entry(name)}


def run_exec(args: argparse.Namespace) -> int:
    log.configure(fmt=args.log_format)
    message: Any = read_json(args.msg, what="message", default={})
    cfg = read_json_object(args.cfg, what="configuration")
    snapshot = read_json_object(args.snapshot, what="snapshot")
    SECRETS.add_from(cfg)
    component = load_component(chosen_root(args.component))
    step = load_step(component, args.step)
    fields = set(component.credential_fields())
    store: CredentialsFile | None = None
    if args.credential:
        store = credentials_file(args.credentials)
        entry = store.entry(args.credential)
        cfg = {**cfg, **entry}
        fields |= set(entry)
    elif args.credentials:
        raise ConfigError("--credentials needs --credential NAME to say which entry to use")
    if store is None:
        http_factory = session_factory(
            sorted(fields), stores=CredentialStores(secrets=secrets_from_env(os.environ))
        )
    else:
        # Other processes may use the same entry: refresh one at a time, from what is saved.
        http_factory = session_factory(
            sorted(fields),
            fresh_cfg=_saved_entry(cfg, store, args.credential),
            stores=CredentialStores(lock=store.lock()),
        )

    def print_event(event: Event) -> None:
        shown = event.as_json()
        if event.kind == "updateKeys":
            if store is not None:
                replaces = getattr(event.payload, "replaces", None)
                store.save(args.credential, event.payload, replaces=replaces)
            shown["payload"] = redact(event.payload)  # the new tokens stay in the file
        sys.stdout.write(json.dumps(shown, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    call = StepCall(
        step.process,
        as_message(message),
        cfg,
        snapshot,
        http_factory=http_factory,
        step=args.step,
    )
    outcome = execute(call, print_event, timeout=args.timeout)
    return 1 if outcome.errors else 0
