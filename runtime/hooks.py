"""The step module's life-cycle hooks, called as the Node.js sailor calls them.

``init(cfg)`` before consuming, on every start; ``startup(cfg)`` once per flow start when
``ELASTICIO_STARTUP_REQUIRED`` is set, its result stored through the platform API;
``shutdown(cfg, startup_data)`` in a process started with ``ELASTICIO_HOOK_SHUTDOWN``.
A missing hook is skipped; a hook may be ``async``.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from runtime.log import get_logger
from runtime.platform_api import PlatformApi, PlatformApiError
from runtime.steps import Step

_CONFLICT = 409
_log = get_logger("runtime.hooks")


def call_hook(step: Step, name: str, *args: Any) -> Any:
    hook = step.function(name)
    if hook is None:
        _log.debug("hook_not_defined", hook=name)
        return None
    result = hook(*args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def run_startup(step: Step, cfg: dict[str, Any], api: PlatformApi, flow_id: str) -> None:
    result = call_hook(step, "startup", cfg)
    state = result if result else {}
    try:
        api.startup_data(flow_id, "POST", state)
    except PlatformApiError as exc:
        if exc.status != _CONFLICT:
            raise
        _log.warning("startup_data_exists_rewriting")
        api.startup_data(flow_id, "DELETE")
        api.startup_data(flow_id, "POST", state)


def run_shutdown(step: Step, cfg: dict[str, Any], api: PlatformApi, flow_id: str) -> None:
    data = api.startup_data(flow_id, "GET")
    call_hook(step, "shutdown", cfg, data)
    api.startup_data(flow_id, "DELETE")
