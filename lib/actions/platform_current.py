"""Action ``httpRequestAxios``: the platform REST API component's current HTTP request.

Runs a flow saved with that component as it is: see lib/platform_steps.py.
"""

from __future__ import annotations

from typing import Any

from lib.platform_steps import run_current
from runtime import AsyncContext, Message


async def process(
    ctx: AsyncContext, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    await run_current(ctx, msg, cfg)
