"""One request's way through send, refresh and resend: the rules, without any I/O.

``request_flow`` is a generator that says what to do next and is told what happened; the
sync session (``AuthorizedSession``, requests) and the async one
(``AsyncAuthorizedSession``, aiohttp) each drive it with their own I/O, so both follow the
very same rules::

    Send(credentials) ─┬─ network failure, 429/503, 5xx of an idempotent method:
                       │    Pause(the transient budget's delay) → Send again
                       └─ 401, or an "expired" signal (Peek at a 400/403's text):
                            Discard the answer → Refresh(the credential it was signed with)
                            → Send once more → refused again: ReauthRequired, never a loop

A token taken from another replica (not minted here) that is refused too is refreshed once
more: at most ``MAX_REFRESHES`` per request. Each Send signs afresh with what it carries.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from runtime.auth.cache import Refreshed
from runtime.auth.credentials import Credentials
from runtime.auth.errors import BodyNotReplayable, InsufficientScope, ReauthRequired
from runtime.auth.retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    SERVER_ERRORS,
    RetryBudget,
    retry_after_seconds,
)
from runtime.errors import AuthError

REFRESH_ON = frozenset({401})
"""The statuses that mean "the token was refused" unless a session says otherwise."""
MAX_REFRESHES = 2
"""Per request: one for our refused token, one more if the tokens another replica saved are
refused too."""
_EXPIRED_MARKERS = ("INVALID_SESSION_ID", "InvalidAuthenticationToken")


class Answer(Protocol):
    """What the flow reads of a response, whichever library made it."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class Send:
    """Sign with ``credentials`` and send; answer the response, or ``Failed``."""

    credentials: Credentials


@dataclass(frozen=True, slots=True)
class Failed:
    """The request got no answer; ``error`` is raised if it is not tried again."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class Peek:
    """Answer the start of the response's text (a 400 or 403 may say the token expired)."""

    response: Answer


@dataclass(frozen=True, slots=True)
class Discard:
    """Close the response: it will not be returned."""

    response: Answer


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Refresh:
    """Replace the token ``seen`` was signed with (unless someone did); answer ``Refreshed``."""

    seen: Credentials


Action = Send | Peek | Discard | Pause | Refresh


def request_flow(
    seen: Credentials,
    minted: bool,
    *,
    verb: str,
    target: str,
    replayable: bool,
    budget: RetryBudget,
    refresh_on: frozenset[int] = REFRESH_ON,
) -> Generator[Action, Any, Any]:
    """The actions for one request; returns the response to hand back.

    Args:
        seen: the credential to sign the first attempt with.
        minted: it was just refreshed here (a refusal of it is final).
        verb: the HTTP method, upper case.
        target: the absolute URL, for messages.
        replayable: the body can be sent again (not a one-shot stream).
        budget: transient retries allowed.
        refresh_on: statuses that refuse the token (401; a step may add 403).

    Raises:
        ReauthRequired: refused even with a fresh token.
        BodyNotReplayable: a refresh is needed but the body cannot be sent again.
        Exception: a network failure (``Failed.error``) past the transient budget.
    """
    refreshes = 0
    while True:
        response = yield from _send_with_retries(seen, verb, replayable, budget)
        if not seen.can_refresh or not (yield from _expired(response, refresh_on)):
            return response
        if minted or refreshes == MAX_REFRESHES:
            yield Discard(response)
            raise refused_after_refresh(target, seen, response.status_code)
        if not replayable:
            yield Discard(response)
            raise BodyNotReplayable(
                f"{verb} {where(target)} needs to be sent again after refreshing the token, but "
                "its body was a one-shot stream; pass bytes, a dict or a seekable file instead"
            )
        yield Discard(response)
        refreshed: Refreshed = yield Refresh(seen)
        seen, minted = refreshed.credentials, refreshed.minted
        refreshes += 1


def _send_with_retries(
    seen: Credentials, verb: str, replayable: bool, budget: RetryBudget
) -> Generator[Action, Any, Any]:
    while True:
        outcome = yield Send(seen)
        if isinstance(outcome, Failed):
            delay = budget.next_delay(None) if verb in IDEMPOTENT_METHODS and replayable else None
            if delay is None:
                raise outcome.error
            yield Pause(delay)
            continue
        if replayable and transient(verb, outcome.status_code):
            delay = budget.next_delay(retry_after_seconds(outcome.headers))
            if delay is not None:
                yield Discard(outcome)
                yield Pause(delay)
                continue
        return outcome


def _expired(response: Answer, refresh_on: frozenset[int]) -> Generator[Action, Any, bool]:
    status = response.status_code
    if status in refresh_on:
        return True
    if 'error="invalid_token"' in response.headers.get("WWW-Authenticate", ""):
        return True
    if status in (400, 403):
        text: str = yield Peek(response)
        return any(marker in text for marker in _EXPIRED_MARKERS)
    return False


def transient(verb: str, status: int) -> bool:
    return status in RETRYABLE_STATUSES or (status in SERVER_ERRORS and verb in IDEMPOTENT_METHODS)


def refused_after_refresh(url: str, credentials: Credentials, status: int) -> ReauthRequired:
    return ReauthRequired(
        f"{where(url)} refused {label(credentials)} ({status}) even with a freshly refreshed "
        "token; re-authentication may be needed"
    )


def refusal(url: str, status: int, credentials: Credentials) -> AuthError | None:
    """The typed error ``check`` raises for 401 and 403; None for other statuses."""
    if status == 401:
        return ReauthRequired(
            f"{where(url)} refused the credential (401); the user may need to reconnect it"
        )
    if status == 403:
        scopes = " ".join(credentials.scopes) or "none requested"
        return InsufficientScope(
            f"{where(url)} refused the operation (403): the credential lacks a permission "
            f"(scopes: {scopes}); grant it and reconnect"
        )
    return None


def where(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.netloc}{parts.path}" or "the API"


def label(credentials: Credentials) -> str:
    name = f" {credentials.name!r}" if credentials.name else ""
    return f"{credentials.type} credential{name}"
