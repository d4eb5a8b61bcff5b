"""Trigger ``httpRequestTrigger``: one HTTP call on every poll.

Its name is also the platform REST API component's older trigger: a configuration with
that trigger's ``reader`` object (and its ``dontThrowErrorFlg``, ``splitResult``,
``enableRebound``, ``followRedirect``, ``delay``, ``callCount``) runs as it does there
(lib/platform_steps.py); any other is the ``httpRequest`` action's call. The message it
gets is empty, so expressions and templates read the step's configuration and the flow's
variables (``$getFlowVariables()``), not a previous step's body.
"""

from __future__ import annotations

from typing import Any

from lib.platform_steps import run_older
from lib.rest_call import run
from lib.selects import tenants
from runtime import AsyncContext, Message

__all__ = ["process", "tenants"]


async def process(
    ctx: AsyncContext, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    if isinstance(cfg.get("reader"), dict):
        await run_older(ctx, msg, cfg)
    else:
        await run(ctx, msg, cfg)
