"""The ``ctx`` a step receives: ``emit``, ``http``, ``log`` and the flow's variables.

A sync step gets a ``Context``: ``ctx.emit`` returns once the event was handed over, and
``ctx.http`` is an ``AuthorizedSession`` (requests). An ``async def`` step gets an
``AsyncContext``: ``ctx.emit`` hands the event over at once and returns an awaitable
(``await`` it for back-pressure, or to know an ``updateKeys`` was saved; not awaiting it
loses nothing), and ``ctx.http`` is an ``AsyncAuthorizedSession`` (aiohttp).

What the runtime does to a context (stopping it when its step runs too long, closing its
session when the step ends) are functions of this module, ``cancel`` and ``release``, not
methods: a step sees only what it may use.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from structlog.typing import FilteringBoundLogger

from runtime.errors import StepCancelled
from runtime.log import get_logger
from runtime.step.events import Event, EventKind, normalise

if TYPE_CHECKING:
    from runtime.auth.async_session import AsyncAuthorizedSession
    from runtime.auth.session import AuthorizedSession

Deliver = Callable[[Event], Any]
"""Hands one event to the runtime; raises if it could not be delivered."""


class HttpFactory(Protocol):
    """Builds the session a step uses for API calls, bound to the step's credentials;
    ``for_async``, when it has one, builds the async twin for async steps."""

    def __call__(self, ctx: Context, /) -> AuthorizedSession: ...


def plain_session(_ctx: Context) -> AuthorizedSession:
    """A session without a credential, for contexts that were given no factory."""
    from runtime.auth.session import AuthorizedSession

    return AuthorizedSession({"type": "none"})


class StepContext:
    """What both kinds of ``ctx`` share: the step's configuration, log, flow variables and
    whether it was stopped. A sync step gets a ``Context``, an async one an ``AsyncContext``;
    they differ in ``emit`` and ``http`` only."""

    def __init__(
        self,
        *,
        deliver: Deliver,
        log: FilteringBoundLogger | None = None,
        log_fields: Mapping[str, Any] | None = None,
        cfg: Mapping[str, Any] | None = None,
        http_factory: HttpFactory | None = None,
        flow_variables: Mapping[str, Any] | None = None,
        step: str = "",
    ) -> None:
        self._deliver = deliver
        self._http_factory = http_factory
        self._http: Any = None
        self._cancelled = False
        self._log = log
        self._log_fields = log_fields
        self.cfg: Mapping[str, Any] = cfg or {}
        self.flow_variables: Mapping[str, Any] = dict(flow_variables or {})
        self.step = step

    @property
    def log(self) -> FilteringBoundLogger:
        """A structlog logger bound to the message's ids (made when first used)."""
        if self._log is None:
            self._log = get_logger("component", **(self._log_fields or {"step": self.step}))
        return self._log

    @property
    def cancelled(self) -> bool:
        """True once the step ran past its time limit; long loops may check it to stop early."""
        return self._cancelled

    def _event(self, event: EventKind, payload: Any) -> Any:
        if self._cancelled:
            raise StepCancelled
        return self._deliver(normalise(event, payload))


class Context(StepContext):
    """What a sync step's code gets as ``ctx``: it plays the part of ``this`` in Node.js."""

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
        self._event(event, payload)

    @property
    def http(self) -> AuthorizedSession:
        """A ``requests`` session for API calls, signed with the step's credentials."""
        if self._http is None:
            self._http = (self._http_factory or plain_session)(self)
        session: AuthorizedSession = self._http
        return session


class Emitted:
    """What ``AsyncContext.emit`` returns: await it to wait until the event is handed over
    (a rate limit's turn, the broker's confirms catching up, an ``updateKeys`` saved)."""

    __slots__ = ("_future",)

    def __init__(self, future: Any = None) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, None]:
        if self._future is not None:
            yield from self._future.__await__()


DONE = Emitted()


class AsyncContext(StepContext):
    """What an ``async def`` step gets as ``ctx``; see the module's docstring."""

    def emit(self, event: EventKind, payload: Any = None) -> Emitted:
        """Emit one of the platform's events without waiting; see ``Context.emit``.

        Returns:
            An awaitable that completes once the event was handed over (and raises if it
            could not be). The event is on its way whether or not it is awaited.
        """
        emitted: Emitted = self._event(event, payload) or DONE
        return emitted

    @property
    def http(self) -> AsyncAuthorizedSession:
        """An aiohttp-based session for API calls, signed with the step's credentials:
        ``await ctx.http.get(...)``."""
        if self._http is None:
            build = getattr(self._http_factory, "for_async", None)
            self._http = plain_async_session(self) if build is None else build(self)
        session: AsyncAuthorizedSession = self._http
        return session


def plain_async_session(_ctx: AsyncContext) -> AsyncAuthorizedSession:
    """An async session without a credential, for contexts that were given no factory."""
    from runtime.auth.async_session import AsyncAuthorizedSession

    return AsyncAuthorizedSession({"type": "none"})


def cancel(ctx: StepContext) -> None:
    """Stop a context whose step ran too long: its later emits raise ``StepCancelled``."""
    ctx._cancelled = True


def release(ctx: StepContext) -> None:
    """Let go of the context's session once its step ended (a shared pool outlives it),
    and of the run it delivered to: later emits raise ``StepCancelled``, as a closed run's
    do. Cutting these links frees a message's objects the moment it ends; left in place,
    each message became a reference cycle (run, ctx, session, outbox, router, message)
    that only the garbage collector's full passes freed, at a cost that grew with the
    messages in flight."""
    ctx._deliver = _after_end
    http = ctx._http
    close = getattr(http, "release", None)
    if callable(close):
        close()


def _after_end(_event: Event) -> Any:
    raise StepCancelled


async def close_async(ctx: StepContext) -> None:
    """Close an async step's session, its own pool included (a run on a loop of its own)."""
    http = ctx._http
    if http is not None and hasattr(http, "close"):
        await http.close()
