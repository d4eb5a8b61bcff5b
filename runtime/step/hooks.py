"""Calling a step module's life-cycle hooks (``init``, ``startup``, ``shutdown``).

A missing hook is skipped; a hook may be ``async``: it then runs on ``on_loop`` (the
worker's event loop, where its async steps run too), else on a loop of its own. When the
worker calls which one is ``runtime.worker.lifecycle``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from runtime.log import get_logger
from runtime.step.loader import Step

_log = get_logger(__name__)


OnLoop = Callable[[Coroutine[Any, Any, Any]], Any]
"""Runs a coroutine to its end on an event loop and returns its result."""


def call_hook(step: Step, name: str, *args: Any, on_loop: OnLoop | None = None) -> Any:
    hook = step.function(name)
    if hook is None:
        _log.debug("hook_not_defined", hook=name)
        return None
    result = hook(*args)
    if inspect.iscoroutine(result):
        result = (on_loop or asyncio.run)(result)
    return result
