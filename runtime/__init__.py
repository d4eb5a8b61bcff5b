"""A Python runtime for elastic.io-style integration components.

Component authors use these names; everything else in the package is the runtime's own.
"""

from runtime.context import Context
from runtime.errors import AuthError, InvalidInput, StepError
from runtime.events import Event, Message

__all__ = ["AuthError", "Context", "Event", "InvalidInput", "Message", "StepError"]
