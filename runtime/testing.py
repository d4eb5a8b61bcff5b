"""Testing steps without a broker: ``run_step`` runs one step and returns its events.

::

    from runtime.testing import run_step

    def test_create_pet():
        events = run_step("createPet", msg={"body": {"name": "Nemo"}}, cfg={...})
        assert [e.kind for e in events] == ["data", "end"]

Each payload goes through JSON as it would on the wire, so a step that emits something
the platform could not carry gets the same ``error`` event here as in production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.platform.secrets import from_env as secrets_from_env
from runtime.step.component import Component, component_root, load_component
from runtime.step.context import HttpFactory
from runtime.step.events import Event, as_message
from runtime.step.executor import execute
from runtime.step.http import CredentialStores, session_factory
from runtime.step.loader import load_step
from runtime.step.run_state import Outcome, StepCall

__all__ = ["Event", "Outcome", "run_select", "run_step", "run_step_outcome", "run_verify"]

DEFAULT_TIMEOUT = 60.0


def run_step(
    name: str,
    *,
    msg: Any = None,
    cfg: Mapping[str, Any] | None = None,
    snapshot: Mapping[str, Any] | None = None,
    component: str | Path | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    http_factory: HttpFactory | None = None,
) -> list[Event]:
    """Run the named trigger or action once and return every event it emitted, in order.

    Args:
        name: the step's key in component.json.
        msg: the incoming message; a dict without ``body`` is taken as the body.
        cfg: the step's configuration (credentials included).
        snapshot: the step's snapshot before this run.
        component: the component's folder; by default the working folder, or
            ``ELASTICIO_COMPONENT_PATH`` under it.
        timeout: seconds before the step is stopped with an ``error`` event.
        http_factory: builds ``ctx.http``; by default an ``AuthorizedSession`` on the
            credential fields of ``cfg``, saving refreshed tokens as ``updateKeys`` events.
    """
    events, _ = run_step_outcome(
        name,
        msg=msg,
        cfg=cfg,
        snapshot=snapshot,
        component=component,
        timeout=timeout,
        http_factory=http_factory,
    )
    return events


def run_step_outcome(
    name: str,
    *,
    msg: Any = None,
    cfg: Mapping[str, Any] | None = None,
    snapshot: Mapping[str, Any] | None = None,
    component: str | Path | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    http_factory: HttpFactory | None = None,
) -> tuple[list[Event], Outcome]:
    """Like ``run_step``, and also the outcome (error counts, whether it timed out)."""
    loaded = _component(component)
    step = load_step(loaded, name)
    events: list[Event] = []

    def collect(event: Event) -> None:
        # Through JSON, as on the wire: unserialisable payloads fail here as they would there.
        events.append(Event(event.kind, json.loads(json.dumps(event.payload))))

    call = StepCall(
        step.process,
        as_message({} if msg is None else msg),
        cfg or {},
        snapshot or {},
        http_factory=http_factory or session_factory(loaded.credential_fields(), stores=_stores()),
        step=name,
    )
    outcome = execute(call, collect, timeout=timeout)
    return events, outcome


def _component(component: str | Path | None) -> Component:
    root = (
        Path(component).resolve()
        if component is not None
        else component_root(Path.cwd(), os.environ.get("ELASTICIO_COMPONENT_PATH"))
    )
    return load_component(root)


def run_verify(
    cfg: Mapping[str, Any], *, component: str | Path | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Call verifyCredentials.py as the platform does; the verdict and any saved keys."""
    from runtime.step.service import verify_credentials

    saved: list[dict[str, Any]] = []
    verdict = verify_credentials(_component(component), cfg, saved.append, stores=_stores())
    return verdict, saved


def run_select(
    step: str, method: str, cfg: Mapping[str, Any], *, component: str | Path | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """Call a dynamic select as the platform does; its options and any saved keys."""
    from runtime.step.service import select_model

    saved: list[dict[str, Any]] = []
    found = select_model(_component(component), step, method, cfg, saved.append, stores=_stores())
    return found, saved


def _stores() -> CredentialStores:
    """The platform's secrets API when the environment names it (tests of platform-held
    credentials set ``ELASTICIO_API_URI`` and the rest)."""
    return CredentialStores(secrets=secrets_from_env(os.environ))
