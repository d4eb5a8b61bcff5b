"""Calling a step module's life-cycle hooks (``init``, ``startup``, ``shutdown``).

A missing hook is skipped; a hook may be ``async``. When the worker calls which one is
``runtime.worker.hooks``.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from runtime.log import get_logger
from runtime.step.loader import Step

_log = get_logger("runtime.step.hooks")


def call_hook(step: Step, name: str, *args: Any) -> Any:
    hook = step.function(name)
    if hook is None:
        _log.debug("hook_not_defined", hook=name)
        return None
    result = hook(*args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result
