"""Trigger ``httpRequestTrigger``: the ``httpRequest`` action's call, made on every poll.

A polling flow runs it on its schedule; the message it gets is empty, so expressions and
templates read the step's configuration and the flow's variables
(``$getFlowVariables()``), not a previous step's body.
"""

from __future__ import annotations

from typing import Any

from lib.rest_call import run
from lib.selects import tenants
from runtime import AsyncContext, Message

__all__ = ["process", "tenants"]


async def process(
    ctx: AsyncContext, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    await run(ctx, msg, cfg)
