"""The eight events a step can emit, and the shapes their payloads take on the wire."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from runtime.auth.credentials import KeysUpdate
from runtime.network import in_words
from runtime.redact import SECRETS

EventKind = Literal[
    "data", "error", "rebound", "snapshot", "updateSnapshot", "updateKeys", "httpReply", "end"
]
EVENT_KINDS: Final = frozenset(get_args(EventKind))

NOT_AVAILABLE = "Not Available"
_RUNTIME_CALLERS = (str(Path("runtime", "step", "executor.py")),)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a step emitted, with its payload already in wire shape."""

    kind: EventKind
    payload: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"event": self.kind, "payload": self.payload}


class Message(dict[str, Any]):
    """A platform message: a JSON object with ``body``, ``headers``, ``attachments`` and more.

    It is a plain dict (so it serialises as is and ``msg["body"]`` works) that also reads as
    ``msg.body``, as component authors coming from the Node.js runtime expect.
    """

    @property
    def id(self) -> Any:
        return self.get("id")

    @property
    def body(self) -> Any:
        return self.get("body", {})

    @property
    def headers(self) -> dict[str, Any]:
        headers = self.get("headers")
        return headers if isinstance(headers, dict) else {}

    @property
    def attachments(self) -> dict[str, Any]:
        attachments = self.get("attachments")
        return attachments if isinstance(attachments, dict) else {}

    @property
    def passthrough(self) -> dict[str, Any]:
        passthrough = self.get("passthrough")
        return passthrough if isinstance(passthrough, dict) else {}


def as_message(value: Any) -> Message:
    """A data payload as a message: a dict with a ``body`` is one; anything else is its body."""
    if (type(value) is dict or isinstance(value, Mapping)) and "body" in value:
        message = Message(value)
    else:
        message = Message(body=value)
    if not isinstance(message.get("headers"), dict):
        message["headers"] = {}
    return message


def error_payload(error: object) -> dict[str, str]:
    """The ``{name, message, stack}`` an error event carries, with secrets cut out.

    Non-exceptions are described as the Node.js runtime does: name ``Error``, the value as
    text for the message, and no stack.
    """
    if isinstance(error, BaseException):
        name = type(error).__name__
        message = in_words(error) or str(error) or name
        stack = _format_stack(error)
    elif isinstance(error, Mapping) and "message" in error:
        name = str(error.get("name") or "Error")
        message = str(error["message"])
        stack = str(error.get("stack") or NOT_AVAILABLE)
    else:
        name = "Error"
        message = NOT_AVAILABLE if error in (None, "") else str(error)
        stack = NOT_AVAILABLE
    return {
        "name": SECRETS.scrub(name),
        "message": SECRETS.scrub(message),
        "stack": SECRETS.scrub(stack),
    }


def _format_stack(error: BaseException) -> str:
    """The traceback, without the runtime's own frames that called the step."""
    described = traceback.TracebackException.from_exception(error)
    frames = [f for f in described.stack if not f.filename.endswith(_RUNTIME_CALLERS)]
    described.stack = traceback.StackSummary.from_list(frames)
    return "".join(described.format()).rstrip("\n")


def normalise(kind: str, payload: Any) -> Event:
    """Check an emitted event and put its payload in wire shape.

    Raises:
        ValueError: the event name is not one of the eight.
        TypeError: the payload is not of the kind the event carries.
    """
    if kind not in EVENT_KINDS:
        known = ", ".join(sorted(EVENT_KINDS))
        raise ValueError(f"unknown event {kind!r}: a step can emit {known}")
    checked: EventKind = kind  # type: ignore[assignment]
    if checked == "data":
        return Event(checked, as_message(payload))
    if checked in ("error", "rebound"):
        return Event(checked, error_payload(payload))
    if checked == "end":
        return Event(checked, None)
    if not isinstance(payload, Mapping):
        what = type(payload).__name__
        raise TypeError(f"the payload of {checked!r} must be a JSON object, not {what}")
    if checked == "updateKeys":
        SECRETS.add_from(payload)
        # The runtime's own (from a refresh) travel as they are: the saver reports on them.
        keys = payload if isinstance(payload, KeysUpdate) else KeysUpdate(payload)
        return Event(checked, keys)
    return Event(checked, dict(payload))
