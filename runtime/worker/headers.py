"""The AMQP headers of outgoing messages, exactly as the Node.js sailor builds them.

Incoming headers are first reduced to ``stepId`` (the previous step), every ``x-eio-meta-*``
header (lower-cased), ``threadId`` (else ``x-eio-meta-trace-id``, else a new uuid),
``messageId``, ``parentMessageId`` and ``reply_to``. Every outgoing message then carries
those, the ``ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS`` values, a new ``messageId`` with the
incoming one as ``parentMessageId``, the step's ids and ``start``; each event adds its own.
"""

from __future__ import annotations

import time
from typing import Any

from runtime.ids import new_id
from runtime.worker.settings import Settings

META_PREFIX = "x-eio-meta-"
ROUTING_KEY_HEADER = "x-eio-routing-key"
ERROR_RESPONSE_HEADER = "x-eio-error-response"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def incoming(headers: dict[str, Any]) -> dict[str, Any]:
    """The part of an incoming message's headers that travels on."""
    reduced: dict[str, Any] = {}
    if headers.get("stepId") is not None:
        reduced["stepId"] = headers["stepId"]
    for name, value in headers.items():
        if name.lower().startswith(META_PREFIX):
            reduced[name.lower()] = value
    reduced["threadId"] = (
        headers.get("threadId") or reduced.get(META_PREFIX + "trace-id") or new_id()
    )
    for name in ("messageId", "parentMessageId"):
        if headers.get(name) is not None:
            reduced[name] = headers[name]
    if isinstance(headers.get("reply_to"), str) and headers["reply_to"]:
        reduced["reply_to"] = headers["reply_to"]
    return reduced


def step_ids(settings: Settings) -> dict[str, Any]:
    """The headers that name this step; also all a start-up error carries."""
    return {
        **settings.additional_vars,
        "execId": settings.exec_id,
        "taskId": settings.flow_id,
        "workspaceId": settings.workspace_id,
        "containerId": settings.container_id,
        "userId": settings.user_id,
        "stepId": settings.step_id,
        "compId": settings.comp_id,
        "function": settings.function,
    }


def outgoing(reduced: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The headers every event of one incoming message starts from."""
    base = {
        **reduced,
        **settings.additional_vars,
        "parentMessageId": reduced.get("messageId"),
        "threadId": reduced["threadId"],
        "messageId": new_id(),
    }
    base.update(step_ids(settings))
    base["start"] = now_ms()
    return base


def routing_key_override(message_headers: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``x-eio-routing-key`` from a data message's own headers (any case), and the rest."""
    override = None
    kept: dict[str, Any] = {}
    for name, value in message_headers.items():
        if name.lower() == ROUTING_KEY_HEADER:
            override = str(value)
        else:
            kept[name] = value
    return override, kept
