"""A Python runtime for elastic.io-style integration components.

Component authors use these names (and ``runtime.auth``'s); everything else in the package
is the runtime's own. Besides the step's contract: the HTTP types of ``ctx.http``, reading
answers within bounds (``bounded``), network failures and hosts in words for errors
(``describe_failure``, ``host_of``), ``Retry-After`` (``retry_after_seconds``), the
platform's attachment storage (``attachment_storage()``), and JSONata as the platform
evaluates it (``compiled_expression``, ``Expression``, ``ExpressionError``).

The names are imported when first used, not with the package: ``python -m runtime health``
runs every few seconds in a container and must not pay for aiohttp, pika and pydantic.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing would cost the health check 4 ms
if TYPE_CHECKING:
    from typing import Any

    from runtime import bounded
    from runtime.auth.async_session import AsyncAuthorizedSession, AsyncResponse
    from runtime.auth.retry import retry_after_seconds
    from runtime.errors import AuthError, InvalidInput, StepCancelled, StepError
    from runtime.mapping.jsonata import Expression, ExpressionError
    from runtime.mapping.jsonata import compiled as compiled_expression
    from runtime.network import describe_failure, host_of
    from runtime.platform.object_storage import (
        ObjectStorage,
        ObjectStorageError,
        attachment_storage,
    )
    from runtime.step.context import AsyncContext, Context
    from runtime.step.events import Event, EventKind, Message
    from runtime.step.executor import Outcome

_HOMES = {
    "AsyncAuthorizedSession": "runtime.auth.async_session",
    "AsyncContext": "runtime.step.context",
    "AsyncResponse": "runtime.auth.async_session",
    "AuthError": "runtime.errors",
    "Context": "runtime.step.context",
    "Event": "runtime.step.events",
    "Expression": "runtime.mapping.jsonata",
    "ExpressionError": "runtime.mapping.jsonata",
    "EventKind": "runtime.step.events",
    "InvalidInput": "runtime.errors",
    "Message": "runtime.step.events",
    "ObjectStorage": "runtime.platform.object_storage",
    "ObjectStorageError": "runtime.platform.object_storage",
    "Outcome": "runtime.step.executor",
    "StepCancelled": "runtime.errors",
    "StepError": "runtime.errors",
    "attachment_storage": "runtime.platform.object_storage",
    "bounded": "runtime.bounded",
    "compiled_expression": "runtime.mapping.jsonata",
    "describe_failure": "runtime.network",
    "host_of": "runtime.network",
    "retry_after_seconds": "runtime.auth.retry",
}

_ALIASES = {"compiled_expression": "compiled"}

__all__ = [
    "AsyncAuthorizedSession",
    "AsyncContext",
    "AsyncResponse",
    "AuthError",
    "Context",
    "Event",
    "EventKind",
    "Expression",
    "ExpressionError",
    "InvalidInput",
    "Message",
    "ObjectStorage",
    "ObjectStorageError",
    "Outcome",
    "StepCancelled",
    "StepError",
    "attachment_storage",
    "bounded",
    "compiled_expression",
    "describe_failure",
    "host_of",
    "retry_after_seconds",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if home == f"runtime.{name}" else getattr(module, _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
