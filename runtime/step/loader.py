"""Importing a step's module from its ``main`` path and finding the functions it exports."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.errors import ComponentError
from runtime.step.component import COMPONENT_FILE, Component, StepSpec

ProcessFunction = Callable[..., Any]
"""``process(ctx, msg, cfg, snapshot)``; may return a value, a generator or a coroutine."""

_import_lock = threading.Lock()


@dataclass(frozen=True)
class Step:
    """A trigger or action ready to run."""

    name: str
    group: str
    spec: StepSpec
    module: ModuleType
    process: ProcessFunction

    def function(self, name: str) -> Callable[..., Any] | None:
        """Another function the step's module exports (a select model, getMetaModel, hooks)."""
        value = getattr(self.module, name, None)
        return value if callable(value) else None


def load_step(component: Component, name: str) -> Step:
    """Import the module of the named trigger or action and find its ``process``.

    Raises:
        ComponentError: the step is unknown, its file fails to import, or has no usable
            ``process(ctx, msg, cfg, snapshot)``.
    """
    group, spec = component.find_step(name)
    where = f"{component.root / COMPONENT_FILE}: $.{group}.{name}.main"
    module = load_module(component.root, spec.main, where)
    process = getattr(module, "process", None)
    if not callable(process):
        raise ComponentError(
            [f"{where}: {spec.main!r} has no function process(ctx, msg, cfg, snapshot)"]
        )
    problem = _signature_problem(process)
    if problem:
        raise ComponentError([f"{where}: {spec.main!r}: process{problem}"])
    return Step(name=name, group=group, spec=spec, module=module, process=process)


def load_module(root: Path, relative: str, where: str) -> ModuleType:
    """Import a Python file of the component, as a package module when its path allows.

    Importing ``lib/actions/x.py`` as ``lib.actions.x`` lets step code import its
    component's shared code (``from lib.client import ...``) the usual way.

    Raises:
        ComponentError: the file is missing or raised while being imported.
    """
    path = (root / relative).resolve()
    if not path.is_file():
        raise ComponentError([f"{where}: file {relative!r} does not exist"])
    with _import_lock:
        try:
            return _import(root.resolve(), path)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise ComponentError([f"{where}: failed to load {relative!r}: {detail}"]) from exc


def _import(root: Path, path: Path) -> ModuleType:
    dotted = _dotted_name(root, path)
    if dotted is not None and _parents_from(root, dotted):
        existing = sys.modules.get(dotted)
        if existing is None or _same_file(existing, path):
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            module = importlib.import_module(dotted)
            if _same_file(module, path):
                return module
            # Another component's folder came first on sys.path with a file of that name.
    # A module of that name was loaded from another folder: load this file on its own.
    unique = "_component_" + hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def _dotted_name(root: Path, path: Path) -> str | None:
    try:
        parts = path.with_suffix("").relative_to(root).parts
    except ValueError:
        return None
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _parents_from(root: Path, dotted: str) -> bool:
    """Whether the packages above ``dotted`` that are loaded already come from ``root``.

    Two components in one process (a test suite of several) may both have a ``lib`` or a
    ``steps`` package; only the first one loaded may own the name.
    """
    parts = dotted.split(".")
    for depth in range(1, len(parts)):
        parent = sys.modules.get(".".join(parts[:depth]))
        if parent is None:
            continue
        places = [*getattr(parent, "__path__", []), getattr(parent, "__file__", None) or ""]
        if not any(place and Path(place).resolve().is_relative_to(root) for place in places):
            return False
    return True


def _same_file(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path


def _signature_problem(function: Callable[..., Any]) -> str | None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None, None, None, None)
    except TypeError:
        return f"{signature} must accept four arguments: (ctx, msg, cfg, snapshot)"
    return None
