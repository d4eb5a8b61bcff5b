"""The error tree in runtime/errors.py is the whole tree: every exception class the runtime
defines has a place drawn there and a docstring saying when it is raised."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import runtime
import runtime.errors


def _exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(runtime.__path__, "runtime."):
        if info.name.endswith("__main__") or ".scaffold" in info.name:
            continue
        module = importlib.import_module(info.name)
        found.extend(
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, BaseException)
            and value.__module__ == info.name
        )
    return found


def test_every_exception_class_is_drawn_in_the_tree():
    drawing = runtime.errors.__doc__ or ""
    missing = [c.__qualname__ for c in _exception_classes() if c.__name__ not in drawing]
    assert missing == []


def test_every_exception_class_says_when_it_is_raised():
    undocumented = [
        f"{c.__module__}.{c.__qualname__}"
        for c in _exception_classes()
        if not (c.__dict__.get("__doc__") or "").strip()
    ]
    assert undocumented == []


def test_what_steps_may_meet_stands_under_the_runtimes_error():
    outside = {c.__name__ for c in _exception_classes() if not issubclass(c, runtime.errors.Error)}
    # Each of these is drawn, with its reason, under "Outside Error, on purpose".
    assert outside == {
        "StepCancelled", "Stopped", "OutOfBounds", "TooLarge", "TooDeep", "TooSlow",
        "NotJson", "BadMessage", "CipherError", "AnswerTooSlow", "ServiceInputError",
        "ClusterError", "GrantRefused", "SecretRefused", "StoreUnavailable",
    }  # fmt: skip
