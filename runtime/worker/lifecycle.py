"""The hooks' place in the worker's life, as the Node.js sailor calls them.

``init(cfg)`` before consuming, on every start; ``startup(cfg)`` once per flow start when
``ELASTICIO_STARTUP_REQUIRED`` is set, its result stored through the platform API;
``shutdown(cfg, startup_data)`` in a process started with ``ELASTICIO_HOOK_SHUTDOWN``.
"""

from __future__ import annotations

from typing import Any

from runtime.log import get_logger
from runtime.platform.api import PlatformApi, PlatformApiError
from runtime.step.hooks import OnLoop, call_hook
from runtime.step.loader import Step

_CONFLICT = 409
_log = get_logger(__name__)


def run_startup(
    step: Step,
    cfg: dict[str, Any],
    api: PlatformApi,
    flow_id: str,
    *,
    on_loop: OnLoop | None = None,
) -> None:
    result = call_hook(step, "startup", cfg, on_loop=on_loop)
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
