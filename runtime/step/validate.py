"""``python -m runtime validate``: component.json and everything it refers to, checked at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime import log
from runtime.errors import ComponentError
from runtime.step.component import COMPONENT_FILE, Component, chosen_root, load_component
from runtime.step.loader import load_module, load_step

VERIFY_FILE = "verifyCredentials.py"


def check_component(root: Path) -> Component:
    """Load the component and import every step; raise one error listing every problem.

    Raises:
        ComponentError: with one line per problem.
    """
    component = load_component(root)
    problems: list[str] = []
    for name in component.spec.step_names():
        try:
            step = load_step(component, name)
        except ComponentError as exc:
            problems.extend(exc.problems)
            continue
        where = f"{root / COMPONENT_FILE}: $.{step.group}.{name}"
        for field_name, field in step.spec.fields.items():
            if isinstance(field.model, str) and step.function(field.model) is None:
                problems.append(
                    f"{where}.fields.{field_name}.model: {step.spec.main!r} has no function "
                    f"{field.model}(ctx, cfg) for this dynamic select"
                )
        if step.spec.dynamic_metadata and step.function("getMetaModel") is None:
            problems.append(
                f"{where}.dynamicMetadata: {step.spec.main!r} has no function "
                "getMetaModel(ctx, cfg)"
            )
    if component.spec.credentials is not None:
        problems.extend(_verify_problems(root))
    if problems:
        raise ComponentError(problems)
    return component


def _verify_problems(root: Path) -> list[str]:
    where = f"{root / VERIFY_FILE}"
    if not (root / VERIFY_FILE).is_file():
        return [f"{where}: missing; component.json declares credentials, so it needs one"]
    try:
        module = load_module(root, VERIFY_FILE, where)
    except ComponentError as exc:
        return exc.problems
    if not callable(getattr(module, "verify", None)):
        return [f"{where}: has no function verify(ctx, credentials)"]
    return []


def run_validate(args: argparse.Namespace) -> int:
    log.configure(fmt=args.log_format)
    component = check_component(chosen_root(args.component))
    spec = component.spec
    sys.stdout.write(
        f"{component.root / COMPONENT_FILE} is valid: {len(spec.triggers)} trigger(s), "
        f"{len(spec.actions)} action(s)\n"
    )
    return 0
