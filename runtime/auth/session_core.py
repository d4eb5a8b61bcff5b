"""What the sync and the async session share: everything but the I/O.

``SessionCore`` holds the credential (a ``CredentialUse``), where refreshed keys go, the
default timeout and the transient budget; it decides whether a refresh is due before
sending, builds each request's flow (runtime.auth.flow) and says which of its driver's
methods carries out each action the flow asks for. ``AuthorizedSession`` (requests) and
``AsyncAuthorizedSession`` (aiohttp) are its two drivers: they differ only in how they send,
read, wait and refresh, as httpx's ``Client`` and ``AsyncClient`` do over one base.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

from runtime.auth.credentials import Credentials
from runtime.auth.flow import (
    REFRESH_ON,
    Action,
    Answer,
    Discard,
    Pause,
    Peek,
    Refresh,
    Send,
    refusal,
)
from runtime.auth.flow import request_flow as _request_flow
from runtime.auth.retry import RetryBudget
from runtime.auth.slots import OnKeys
from runtime.auth.use import CredentialUse, credential_use
from runtime.errors import StepCancelled

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_WAIT = 30.0

Flow = Generator[Action, Any, Any]


class SessionCore:
    """The rules both sessions follow (see ``AuthorizedSession`` for the arguments).

    Args:
        credentials: the credential: a ``Credentials``, a dict ``Credentials.parse`` reads,
            or a ``CredentialUse`` from ``credential_use`` (to share its cache, lock, key
            or hooks).
        on_keys: receives the whole merged credential after each refresh, and must return
            before the new token is used; if it raises, the request fails with that error.
        timeout: seconds per attempt when the call gives none.
        retries: transient retries allowed per request (429, 503, 5xx for idempotent
            methods, network errors).
        max_retry_wait: seconds those retries may wait in all.
    """

    def __init__(
        self,
        credentials: Credentials | Mapping[str, Any] | CredentialUse,
        *,
        on_keys: OnKeys | None,
        timeout: float,
        retries: int,
        max_retry_wait: float,
    ) -> None:
        self._use = (
            credentials if isinstance(credentials, CredentialUse) else credential_use(credentials)
        )
        self._on_keys = on_keys
        self._timeout = timeout
        self.retries = retries
        """Transient retries per request; a step with its own retry policy sets 0."""
        self._max_retry_wait = max_retry_wait
        self._always_done = False
        self.refresh_on = REFRESH_ON
        """Statuses that refuse the token and call for one refresh; a step whose API says
        403 for an expired token adds 403."""

    @property
    def credentials(self) -> Credentials:
        """The credential as it is now (after any refresh)."""
        return self._use.credentials

    @property
    def base_url(self) -> str | None:
        return self._use.base_url

    def absolute(self, url: str) -> str:
        """The URL a request for ``url`` goes to (relative ones under the base URL).

        Raises:
            CredentialError: a relative URL and no base URL.
        """
        return self._use.absolute(url)

    def begin_message(self, on_keys: OnKeys) -> None:
        """Serve a new message: its keys go to ``on_keys``, and an ``always`` credential is
        refreshed again before its first request."""
        self._on_keys = on_keys
        self._always_done = False
        self.retries = DEFAULT_RETRIES
        self.refresh_on = REFRESH_ON

    def check(self, response: Any) -> Any:
        """Raise a typed error for 401 and 403, ``HTTPError`` for other failures."""
        refused = refusal(response.url, response.status_code, self.credentials)
        if refused is not None:
            raise refused
        response.raise_for_status()
        return response

    # --- for the drivers --------------------------------------------------------------

    def _always_pending(self) -> bool:
        """An ``always`` credential not yet refreshed for this message."""
        current = self._use.credentials
        return not self._always_done and current.can_refresh and current.refresh_policy == "always"

    def _due_before_send(self) -> float | None:
        """The validity a refresh before this request must give (0 for any), or None to
        sign with the token as it is. An ``always`` credential counts once per message."""
        if self._always_pending():
            self._always_done = True
            return 0.0
        return self._use.due(first_of_message=False)

    def _flow(
        self, seen: Credentials, minted: bool, verb: str, target: str, replayable: bool
    ) -> Flow:
        return _request_flow(
            seen,
            minted,
            verb=verb,
            target=target,
            replayable=replayable,
            budget=RetryBudget(attempts=self.retries, max_wait=self._max_retry_wait),
            refresh_on=self.refresh_on,
        )

    def _handler(self, action: Action) -> Callable[..., Any]:
        """The driver's method that carries out ``action``."""
        match action:
            case Send():
                return self._send
            case Peek():
                return self._peek
            case Discard():
                return self._discard
            case Pause():
                return self._pause
            case Refresh():
                return self._refresh_for
        raise TypeError(f"unknown action {action!r}")

    def _end_message(self) -> None:
        """The message this session served ended: its ``on_keys`` (which holds the
        message's context) is let go, and a refresh still started for it fails rather than
        use a token it could not save."""
        self._on_keys = _message_ended

    def _close_use(self) -> None:
        if not self._use.shared:
            self._use.close()

    # The driver's I/O, one method an action (sync or async, as the driver is).
    _send: Callable[..., Any]
    _peek: Callable[..., Any]
    _discard: Callable[..., Any]
    _pause: Callable[..., Any]
    _refresh_for: Callable[..., Any]


class Finished:
    """The flow returned: ``response`` goes back to the caller."""

    __slots__ = ("response",)

    def __init__(self, response: Answer) -> None:
        self.response = response


def advance(flow: Flow, answer: Any) -> Action | Finished:
    """Tell the flow what happened; the next action, or ``Finished``."""
    try:
        return flow.send(answer)
    except StopIteration as done:
        return Finished(done.value)


def seekable(data: Any) -> bool:
    """A file body that can be rewound and sent again (an upload spooled to disk)."""
    is_seekable = getattr(data, "seekable", None)
    return callable(is_seekable) and bool(is_seekable()) and hasattr(data, "read")


def _message_ended(_keys: dict[str, Any]) -> None:
    raise StepCancelled
