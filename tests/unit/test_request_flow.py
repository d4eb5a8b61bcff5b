"""``request_flow`` on its own: send it what happened, read the action it asks for next.
No HTTP, no session: the rules both sessions follow, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from runtime.auth.cache import Refreshed
from runtime.auth.credentials import Credentials
from runtime.auth.errors import BodyNotReplayable, ReauthRequired
from runtime.auth.flow import Discard, Failed, Pause, Peek, Refresh, Send, request_flow
from runtime.auth.retry import RetryBudget


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


OLD = Credentials.parse({"type": "oauth2", "accessToken": "old", "refreshToken": "rt",
                         "tokenUrl": "https://id.example/token", "clientId": "c"})  # fmt: skip
NEW = Credentials.parse({"type": "oauth2", "accessToken": "new", "refreshToken": "rt2",
                         "tokenUrl": "https://id.example/token", "clientId": "c"})  # fmt: skip
BEARER = Credentials.parse({"type": "bearer", "token": "static"})


def flow(credentials=OLD, *, verb="GET", replayable=True, minted=False, attempts=3):
    return request_flow(
        credentials,
        minted,
        verb=verb,
        target="https://api.example/v1/items",
        replayable=replayable,
        budget=RetryBudget(attempts=attempts, max_wait=60),
    )


def finish(steps, answer):
    with pytest.raises(StopIteration) as done:
        steps.send(answer)
    return done.value.value


def test_an_answer_that_is_not_a_refusal_is_handed_back_as_it_is():
    steps = flow()
    assert next(steps) == Send(OLD)
    ok = Answer(200)
    assert finish(steps, ok) is ok


def test_401_discards_refreshes_the_credential_it_was_signed_with_and_sends_again():
    steps = flow()
    assert next(steps) == Send(OLD)
    refused = Answer(401)
    assert steps.send(refused) == Discard(refused)
    assert steps.send(None) == Refresh(OLD)
    assert steps.send(Refreshed(NEW, minted=True)) == Send(NEW)
    ok = Answer(200)
    assert finish(steps, ok) is ok


def test_a_token_minted_here_and_refused_again_is_reauth():
    steps = flow()
    next(steps)
    steps.send(Answer(401))
    steps.send(None)
    steps.send(Refreshed(NEW, minted=True))
    again = Answer(401)
    assert steps.send(again) == Discard(again)
    with pytest.raises(ReauthRequired, match=r"api\.example/v1/items refused"):
        steps.send(None)


def test_tokens_another_replica_saved_are_refreshed_once_more_when_refused_too():
    steps = flow()
    next(steps)
    steps.send(Answer(401))
    steps.send(None)
    assert steps.send(Refreshed(NEW, minted=False)) == Send(NEW)  # adopted, not minted
    steps.send(Answer(401))
    assert steps.send(None) == Refresh(NEW)


def test_a_body_that_cannot_be_sent_again_is_refused_before_refreshing():
    steps = flow(verb="POST", replayable=False)
    next(steps)
    steps.send(Answer(401))
    with pytest.raises(BodyNotReplayable, match="one-shot stream"):
        steps.send(None)


def test_a_credential_that_cannot_refresh_hands_the_401_back():
    steps = flow(BEARER)
    assert next(steps) == Send(BEARER)
    refused = Answer(401)
    assert finish(steps, refused) is refused


def test_a_403_is_peeked_at_and_refreshed_only_when_it_says_the_token_expired():
    steps = flow()
    next(steps)
    forbidden = Answer(403)
    assert steps.send(forbidden) == Peek(forbidden)
    assert finish(steps, '{"error": "forbidden"}') is forbidden

    steps = flow()
    next(steps)
    expired = Answer(403)
    steps.send(expired)
    assert steps.send('[{"errorCode": "INVALID_SESSION_ID"}]') == Discard(expired)
    assert steps.send(None) == Refresh(OLD)


def test_429_waits_as_retry_after_says_then_sends_again():
    steps = flow(verb="POST")
    next(steps)
    busy = Answer(429, {"Retry-After": "2"})
    assert steps.send(busy) == Discard(busy)
    assert steps.send(None) == Pause(2.0)
    assert steps.send(None) == Send(OLD)


def test_a_network_failure_is_tried_again_for_get_and_raised_for_post():
    lost = ConnectionError("reset by peer")
    steps = flow(verb="GET")
    next(steps)
    assert isinstance(steps.send(Failed(lost)), Pause)

    steps = flow(verb="POST")
    next(steps)
    with pytest.raises(ConnectionError, match="reset by peer"):
        steps.send(Failed(lost))


def test_past_the_budget_the_last_answer_is_handed_back():
    steps = flow(attempts=1)
    next(steps)
    steps.send(Answer(503, {"Retry-After": "0"}))
    steps.send(None)  # the pause
    assert steps.send(None) == Send(OLD)
    last = Answer(503, {"Retry-After": "0"})
    assert finish(steps, last) is last
