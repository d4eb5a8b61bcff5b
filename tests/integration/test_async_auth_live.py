"""The async ctx.http against a real OAuth2 provider and API on 127.0.0.1: the same rules as
the sync session, with hundreds of tasks on one event loop."""

from __future__ import annotations

import asyncio

import pytest
import requests

from runtime.auth import AsyncAuthorizedSession, ReauthRequired
from runtime.auth.async_session import HttpPool
from runtime.auth.use import credential_use
from tests.helpers import demo_credential as credential


def test_two_hundred_tasks_meeting_an_expired_token_make_one_token_call(demo_api, auth_cache):
    creds = credential(demo_api)
    demo_api.book.expire_all()
    saved: list[dict] = []

    async def storm() -> list[int]:
        pool = HttpPool()
        try:
            sessions = [
                AsyncAuthorizedSession(credential_use(creds, cache=auth_cache, key="a-1"), on_keys=saved.append, pool=pool)
                for _ in range(200)
            ]  # fmt: skip
            answers = await asyncio.gather(*(s.get("records/3") for s in sessions))
            return [a.status_code for a in answers]
        finally:
            await pool.close()

    assert asyncio.run(storm()) == [200] * 200
    stats = demo_api.stats()
    assert stats["token_calls"] == 1
    assert stats["reused_refresh_tokens"] == 0
    assert len(saved) == 1  # saved once, before any task used the new token
    assert demo_api.book.refresh_token_alive(saved[0]["refreshToken"])


def test_a_fresh_token_refused_again_is_reauth_not_a_loop(demo_api, auth_cache):
    creds = credential(demo_api)

    async def call() -> None:
        session = AsyncAuthorizedSession(
            credential_use(creds, cache=auth_cache), on_keys=lambda keys: None
        )
        try:
            await session.get("status/401")
        finally:
            await session.close()

    with pytest.raises(ReauthRequired, match="even with a freshly refreshed token"):
        asyncio.run(call())
    assert demo_api.stats()["token_calls"] == 1


def test_429_with_retry_after_is_retried_within_its_budget(demo_api, auth_cache):
    creds = credential(demo_api)

    async def call() -> dict:
        session = AsyncAuthorizedSession(
            credential_use(creds, cache=auth_cache), on_keys=lambda keys: None
        )
        try:
            answer = await session.get(
                "limited", params={"key": "a2", "times": 2, "retry_after": 0}
            )
            return answer.json()
        finally:
            await session.close()

    assert asyncio.run(call()) == {"ok": True, "attempts": 3}


def test_an_unreachable_api_is_a_requests_error_naming_the_host(auth_cache):
    async def call() -> None:
        session = AsyncAuthorizedSession(
            credential_use({"type": "none"}, cache=auth_cache), retries=0
        )
        try:
            await session.get("http://127.0.0.1:9/records")
        finally:
            await session.close()

    with pytest.raises(requests.exceptions.ConnectionError, match=r"127\.0\.0\.1:9"):
        asyncio.run(call())
