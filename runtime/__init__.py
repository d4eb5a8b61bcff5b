"""A Python runtime for elastic.io-style integration components.

Component authors use these names; everything else in the package is the runtime's own.
"""

from runtime.errors import AuthError, InvalidInput, StepCancelled, StepError
from runtime.step.context import AsyncContext, Context
from runtime.step.events import Event, EventKind, Message
from runtime.step.executor import Outcome

__all__ = [
    "AsyncContext",
    "AuthError",
    "Context",
    "Event",
    "EventKind",
    "InvalidInput",
    "Message",
    "Outcome",
    "StepCancelled",
    "StepError",
]
