"""A Python runtime for elastic.io-style integration components.

Component authors use these names; everything else in the package is the runtime's own.
"""

import time

IMPORTED_AT = time.monotonic()
"""When the runtime was first imported: start-up times are measured from here."""

from runtime.errors import AuthError, InvalidInput, StepCancelled, StepError  # noqa: E402
from runtime.step.context import Context  # noqa: E402
from runtime.step.events import Event, EventKind, Message  # noqa: E402
from runtime.step.executor import Outcome  # noqa: E402

__all__ = [
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
