"""Action ``httpRequest``: one HTTP call built from the step's fields and the message.

The fields, their defaults and the error policy are described in lib/rest_call.py,
lib/request_plan.py (URL, query, headers and body as text with ``{{path}}`` templates or as
JSONata), lib/bodies.py (content types, file uploads), lib/responses.py (the emitted
message) and lib/options.py (limits); the README shows them at work.
"""

from __future__ import annotations

from typing import Any

from lib.rest_call import run
from lib.selects import objects, tenants
from runtime import AsyncContext, Message

__all__ = ["objects", "process", "tenants"]


async def process(
    ctx: AsyncContext, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    await run(ctx, msg, cfg)
