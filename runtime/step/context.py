"""The ``ctx`` a step receives: ``emit``, ``http``, ``log`` and the flow's variables.

What the runtime does to a context (stopping it when its step runs too long, closing its
session when the step ends) are functions of this module, ``cancel`` and ``release``, not
methods: a step sees only what it may use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from structlog.typing import FilteringBoundLogger

from runtime.errors import StepCancelled
from runtime.step.events import Event, EventKind, normalise

if TYPE_CHECKING:
    from runtime.auth.session import AuthorizedSession

Deliver = Callable[[Event], None]
"""Hands one event to the runtime; returns once it is delivered, raises if it could not be."""

HttpFactory = Callable[["Context"], "AuthorizedSession"]
"""Builds the session a step uses for API calls, bound to the step's credentials."""


def plain_session(_ctx: Context) -> AuthorizedSession:
    """A session without a credential, for contexts that were given no factory."""
    from runtime.auth.session import AuthorizedSession

    return AuthorizedSession({"type": "none"})


class Context:
    """What a step's code gets as ``ctx``: it plays the part of ``this`` in Node.js steps."""

    def __init__(
        self,
        *,
        deliver: Deliver,
        log: FilteringBoundLogger,
        cfg: Mapping[str, Any] | None = None,
        http_factory: HttpFactory | None = None,
        flow_variables: Mapping[str, Any] | None = None,
        step: str = "",
    ) -> None:
        self._deliver = deliver
        self._http_factory = http_factory or plain_session
        self._http: AuthorizedSession | None = None
        self._cancelled = False
        self.log = log
        self.cfg: Mapping[str, Any] = cfg or {}
        self.flow_variables: Mapping[str, Any] = dict(flow_variables or {})
        self.step = step

    def emit(self, event: EventKind, payload: Any = None) -> None:
        """Emit one of the platform's events; returns once the runtime has taken it.

        In the worker, data and the other publishing events return once handed to the
        broker (the message is acked only after all are confirmed); ``updateKeys`` returns
        only once the keys are saved.

        Args:
            event: ``data``, ``error``, ``rebound``, ``snapshot``, ``updateSnapshot``,
                ``updateKeys``, ``httpReply`` or ``end``.
            payload: the event's payload (a message for ``data``, an exception or text for
                ``error`` and ``rebound``, a JSON object for the others).

        Raises:
            ValueError: unknown event name.
            TypeError: a payload of the wrong kind (a list where an object is needed).
            StepError: the runtime could not deliver the event (it has already reported it).
        """
        if self._cancelled:
            raise StepCancelled
        self._deliver(normalise(event, payload))

    @property
    def http(self) -> AuthorizedSession:
        """A ``requests`` session for API calls, signed with the step's credentials."""
        if self._http is None:
            self._http = self._http_factory(self)
        return self._http

    @property
    def cancelled(self) -> bool:
        """True once the step ran past its time limit; long loops may check it to stop early."""
        return self._cancelled


def cancel(ctx: Context) -> None:
    """Stop a context whose step ran too long: its later emits raise ``StepCancelled``."""
    ctx._cancelled = True


def release(ctx: Context) -> None:
    """Close the context's session once its step ended (a shared pool outlives it)."""
    if ctx._http is not None:
        ctx._http.close()
