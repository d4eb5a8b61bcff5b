"""Trigger pollRecords, verifyCredentials and the tenants select, against the demo API."""

from __future__ import annotations

import pytest

from runtime.devtools.demo.api import DemoApi
from runtime.step.events import Event
from runtime.testing import run_select, run_step_outcome, run_verify
from tests.helpers import ROOT, demo_oauth

STYLES = {
    "next_link": {
        "pagination": "next_link",
        "recordsPath": "items",
        "nextPath": "next",
        "query": {"style": "next", "page_size": 7},
    },
    "link_header": {"pagination": "link_header", "query": {"style": "link", "page_size": 7}},
    "page": {
        "pagination": "page",
        "recordsPath": "items",
        "pageParam": "page",
        "pageSizeParam": "page_size",
        "pageSize": 7,
        "totalPagesPath": "total_pages",
        "query": {"style": "page"},
    },
    "offset": {
        "pagination": "offset",
        "recordsPath": "items",
        "offsetParam": "offset",
        "pageSizeParam": "limit",
        "pageSize": 7,
        "query": {"style": "offset"},
    },
    "cursor": {
        "pagination": "cursor",
        "recordsPath": "items",
        "nextPath": "next_cursor",
        "cursorParam": "cursor",
        "query": {"style": "cursor", "page_size": 7},
    },
}


def credential(api: DemoApi) -> dict:
    return demo_oauth(api, _account="acct-poll")


def poll(cfg: dict, snapshot: dict | None = None):
    return run_step_outcome("pollRecords", cfg=cfg, snapshot=snapshot or {}, component=ROOT)


def ids(events: list[Event]) -> list[int]:
    return [e.payload["body"]["id"] for e in events if e.kind == "data"]


def last_cursor(events: list[Event]):
    return [e.payload["cursor"] for e in events if e.kind == "snapshot"][-1]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_pagination_style_emits_every_record_once_in_order(demo_api, style):
    cfg = {**credential(demo_api), "path": "/records", "cursorField": "updated_at", **STYLES[style]}
    events, outcome = poll(cfg)
    assert not outcome.failed, events
    assert ids(events) == list(range(1, 26))
    assert last_cursor(events) == "2026-01-01T00:25:00Z"
    assert events[-1].kind == "end"


def test_the_next_run_emits_only_what_is_new(demo_api):
    cfg = {**credential(demo_api), "path": "/records", "cursorField": "id", **STYLES["next_link"]}
    first, _ = poll(cfg)
    snapshot = {"cursor": last_cursor(first)}
    nothing, _ = poll(cfg, snapshot)
    assert ids(nothing) == []
    with demo_api.lock:
        from runtime.devtools.demo.api import make_record

        demo_api.records += [make_record(26), make_record(27)]
    fresh, _ = poll(cfg, snapshot)
    assert ids(fresh) == [26, 27]
    assert last_cursor(fresh) == 27


def test_the_server_side_since_filter_is_used_when_configured(demo_api):
    cfg = {
        **credential(demo_api),
        "path": "/records",
        "cursorField": "updated_at",
        "sinceParam": "since",
        **STYLES["next_link"],
    }
    events, _ = poll(cfg, {"cursor": "2026-01-01T00:20:00Z"})
    assert ids(events) == [21, 22, 23, 24, 25]


def test_a_refresh_in_the_middle_of_a_poll_saves_keys_once_and_loses_no_page(demo_api):
    cfg = {**credential(demo_api), "path": "/records", "cursorField": "id", **STYLES["offset"]}
    pages_seen = []
    from runtime.devtools.demo import routes as demo_module

    real = demo_module._paginate

    def expire_after_first_page(handler, items):
        # The provider expires every token right after the first page went out.
        reply = real(handler, items)
        pages_seen.append(handler.query.get("offset"))
        if len(pages_seen) == 1:
            demo_api.book.expire_all()
        return reply

    demo_module._paginate = expire_after_first_page
    try:
        events, outcome = poll(cfg)
    finally:
        demo_module._paginate = real
    assert not outcome.failed
    assert ids(events) == list(range(1, 26))
    assert [e.kind for e in events].count("updateKeys") == 1
    assert demo_api.stats()["token_calls"] == 1
    assert demo_api.stats()["unauthorized"] == 1


def test_a_failure_halfway_keeps_the_cursor_at_the_last_record_emitted(demo_api):
    cfg = {
        **credential(demo_api),
        "path": "/records",
        "cursorField": "id",
        "pagination": "offset",
        "recordsPath": "items",
        "offsetParam": "offset",
        "pageSizeParam": "limit",
        "pageSize": 5,
        "query": {"style": "offset", "fail_after": 12},
    }
    events, outcome = poll(cfg)
    assert outcome.failed
    assert ids(events) == list(range(1, 16))
    assert last_cursor(events) == 15
    assert "answered 500" in next(e for e in events if e.kind == "error").payload["message"]
    cfg["query"] = {"style": "offset"}
    rest, outcome = poll(cfg, {"cursor": 15})
    assert not outcome.failed
    assert ids(rest) == list(range(16, 26))  # nothing skipped, nothing twice


def test_verify_accepts_a_working_credential(demo_api):
    verdict, saved = run_verify({**credential(demo_api), "verifyPath": "/me"}, component=ROOT)
    assert verdict == {"verified": True}
    assert saved == []


def test_verify_refreshes_and_saves_keys(demo_api):
    cfg = {**credential(demo_api), "verifyPath": "/me"}
    demo_api.book.expire_all()
    verdict, saved = run_verify(cfg, component=ROOT)
    assert verdict == {"verified": True}
    assert len(saved) == 1
    assert saved[0]["oauth"]["refresh_token"] != cfg["oauth"]["refresh_token"]


def test_verify_rejects_a_bad_credential_with_a_reason(demo_api):
    verdict, _ = run_verify(
        {
            "type": "bearer",
            "token": "not-a-token",
            "baseUrl": f"{demo_api.url}/api",
            "verifyPath": "/me",
        },
        component=ROOT,
    )
    assert verdict["verified"] is False
    assert "rejected the credential (401)" in verdict["reason"]


def test_verify_with_a_dead_refresh_token_is_not_verified(demo_api):
    cfg = credential(demo_api)
    cfg["oauth"]["refresh_token"] = "rt-unknown"
    demo_api.book.expire_all()
    verdict, _ = run_verify({**cfg, "verifyPath": "/me"}, component=ROOT)
    assert verdict["verified"] is False
    assert "reconnect" in verdict["reason"]


def test_verify_of_an_unreachable_api_raises_instead_of_saying_invalid():
    import requests

    with pytest.raises(requests.exceptions.ConnectionError):
        run_verify(
            {
                "type": "bearer",
                "token": "t-123",
                "baseUrl": "http://127.0.0.1:9",
                "verifyPath": "/me",
            },
            component=ROOT,
        )


def test_verify_of_a_failing_api_raises(demo_api):
    with pytest.raises(Exception, match="could not check the credential"):
        run_verify(
            {
                "type": "api_key",
                "key": "demo-api-key",
                "baseUrl": f"{demo_api.url}/api",
                "verifyPath": "/status/502",
            },
            component=ROOT,
        )


def test_tenants_select_lists_the_credential_tenants(demo_api):
    options, _ = run_select("httpRequest", "tenants", credential(demo_api), component=ROOT)
    assert options == {"tenant-1": "Demo Company (UK)", "tenant-2": "Demo Company (US)"}
