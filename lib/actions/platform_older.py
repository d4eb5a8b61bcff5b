"""Action ``httpRequestAction``: the platform REST API component's older HTTP request.

Runs a flow saved with that step as it is: see lib/platform_steps.py.
"""

from __future__ import annotations

from typing import Any

from lib.platform_steps import run_older
from runtime import AsyncContext, Message


async def process(
    ctx: AsyncContext, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    await run_older(ctx, msg, cfg)
