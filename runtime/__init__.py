"""A Python runtime for elastic.io-style integration components.

Component authors use these names (and ``runtime.auth``'s); everything else in the package
is the runtime's own. Besides the step's contract: the HTTP types of ``ctx.http``, reading
answers within bounds (``bounded``), network failures and hosts in words for errors
(``describe_failure``, ``host_of``), ``Retry-After`` (``retry_after_seconds``), and the
platform's attachment storage (``attachment_storage()``).
"""

from runtime import bounded
from runtime.auth.async_session import AsyncAuthorizedSession, AsyncResponse
from runtime.auth.retry import retry_after_seconds
from runtime.errors import AuthError, InvalidInput, StepCancelled, StepError
from runtime.network import describe_failure, host_of
from runtime.platform.object_storage import ObjectStorage, ObjectStorageError, attachment_storage
from runtime.step.context import AsyncContext, Context
from runtime.step.events import Event, EventKind, Message
from runtime.step.executor import Outcome

__all__ = [
    "AsyncAuthorizedSession",
    "AsyncContext",
    "AsyncResponse",
    "AuthError",
    "Context",
    "Event",
    "EventKind",
    "InvalidInput",
    "Message",
    "ObjectStorage",
    "ObjectStorageError",
    "Outcome",
    "StepCancelled",
    "StepError",
    "attachment_storage",
    "bounded",
    "describe_failure",
    "host_of",
    "retry_after_seconds",
]
