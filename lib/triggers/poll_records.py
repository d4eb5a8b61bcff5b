"""Trigger ``pollRecords``: every record of a list endpoint that is new since the last run.

Fields: ``path`` (the list endpoint), ``query`` (JSON), ``recordsPath`` (where the list is in
the body; empty when the body is the list), pagination fields (lib/pagination.py),
``cursorField`` (a field that grows with each new record: ``updated_at``, ``id``),
``sinceParam`` (a query parameter the API filters by, sent the last cursor), ``tenantId``.

Each record is emitted as its own ``data`` message as its page arrives. The snapshot holds
the cursor of the last record emitted: it is saved after every page and, if a page fails
halfway, for the last record that did go out, so the next run neither skips nor repeats.
Records are expected in ascending cursor order; those at or below the cursor are skipped.
"""

from __future__ import annotations

from typing import Any

from lib import paths
from lib.http import DEFAULT_MAX_BYTES, tenant_header
from lib.pagination import Paging, pages
from lib.selects import tenants
from lib.templating import json_field
from runtime import AsyncContext, InvalidInput, Message

__all__ = ["process", "tenants"]


async def process(
    ctx: AsyncContext, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> None:
    path = str(cfg.get("path") or "").strip()
    if not path:
        raise InvalidInput("field 'path' is empty: give the list endpoint's URL or path")
    cursor_field = str(cfg.get("cursorField") or "").strip()
    cursor = snapshot.get("cursor")
    query = dict(json_field(cfg.get("query"), "query") or {})
    since_param = str(cfg.get("sinceParam") or "").strip()
    if since_param and cursor is not None:
        query[since_param] = cursor
    paging = Paging.from_cfg(cfg, int(cfg.get("maxResponseBytes") or DEFAULT_MAX_BYTES))
    headers = tenant_header(ctx, cfg.get("tenantId"))

    emitted = 0
    last = cursor
    try:
        async for page in pages(ctx.http, path, query, headers, paging):
            for record in page.records:
                value = _cursor_of(record, cursor_field)
                if value is not None and cursor is not None and not _after(value, cursor):
                    continue
                await ctx.emit("data", {"body": record})
                emitted += 1
                if value is not None:
                    last = value
            if cursor_field and last != snapshot.get("cursor"):
                await _save(ctx, snapshot, last)
    except Exception:
        # Keep what did go out; a timeout (StepCancelled) cannot emit any more, and a crash
        # leaves the message unacked, so the whole poll runs again from the saved cursor.
        if cursor_field and last != snapshot.get("cursor"):
            await _save(ctx, snapshot, last)
        raise
    ctx.log.info("poll_done", records=emitted, cursor=last)


async def _save(ctx: AsyncContext, snapshot: dict[str, Any], cursor: Any) -> None:
    snapshot["cursor"] = cursor
    await ctx.emit("snapshot", {"cursor": cursor})


def _cursor_of(record: Any, field: str) -> Any:
    if not field:
        return None
    try:
        return paths.get(record, field)
    except paths.PathError:
        raise InvalidInput(f"a record has no cursorField {field!r}") from None


def _after(value: Any, cursor: Any) -> bool:
    """Whether a record's cursor is past the saved one (numbers as numbers, else as text)."""
    try:
        return float(value) > float(cursor)
    except (TypeError, ValueError):
        return str(value) > str(cursor)
