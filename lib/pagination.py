"""Walking a paginated list endpoint, one page at a time.

Styles (the ``pagination`` field):

* ``none``: one request;
* ``next_link``: the body holds the next page's URL at ``nextPath`` (default ``next``);
* ``link_header``: the ``Link: <...>; rel="next"`` header;
* ``page``: ``pageParam`` counts 1, 2, 3 ... until a page is empty (or ``totalPagesPath``);
* ``offset``: ``offsetParam`` grows by the records received until a short page;
* ``cursor``: the body holds a cursor at ``nextPath``, sent back as ``cursorParam``.

Every page is bounded by ``maxPages`` (default 1000), so a buggy API cannot loop us forever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lib import paths
from lib.http import HttpStatusError, read_limited, snippet
from runtime import AsyncAuthorizedSession, AsyncResponse, InvalidInput, bounded

STYLES = ("none", "next_link", "link_header", "page", "offset", "cursor")


@dataclass(frozen=True)
class Page:
    records: list[Any]
    response: AsyncResponse


@dataclass(frozen=True)
class Paging:
    style: str
    records_path: str
    next_path: str
    page_param: str
    offset_param: str
    cursor_param: str
    size_param: str
    page_size: int
    total_pages_path: str
    max_pages: int
    max_bytes: int

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any], max_bytes: int) -> Paging:
        style = str(cfg.get("pagination") or "none")
        if style not in STYLES:
            raise InvalidInput(f"pagination {style!r} is not one of {', '.join(STYLES)}")
        return cls(
            style=style,
            records_path=str(cfg.get("recordsPath") or ""),
            next_path=str(cfg.get("nextPath") or ("next_cursor" if style == "cursor" else "next")),
            page_param=str(cfg.get("pageParam") or "page"),
            offset_param=str(cfg.get("offsetParam") or "offset"),
            cursor_param=str(cfg.get("cursorParam") or "cursor"),
            size_param=str(cfg.get("pageSizeParam") or ""),
            page_size=int(cfg.get("pageSize") or 0),
            total_pages_path=str(cfg.get("totalPagesPath") or ""),
            max_pages=int(cfg.get("maxPages") or 1000),
            max_bytes=max_bytes,
        )


async def pages(
    http: AsyncAuthorizedSession, url: str, params: dict[str, Any], headers: dict[str, str],
    paging: Paging,
) -> AsyncIterator[Page]:  # fmt: skip
    """Yield each page's records, requesting the next page only once asked for it."""
    query = dict(params)
    if paging.size_param and paging.page_size:
        query[paging.size_param] = paging.page_size
    if paging.style == "page":
        query[paging.page_param] = 1
    elif paging.style == "offset":
        query[paging.offset_param] = 0
    target: str | None = url
    for number in range(1, paging.max_pages + 1):
        if target is None:
            return
        response = await http.get(target, params=query, headers=headers, stream=True)
        raw = await read_limited(response, paging.max_bytes)
        if not response.ok:
            raise HttpStatusError(response, snippet(raw))
        body = _json(raw, response)
        records = _records(body, paging.records_path)
        yield Page(records, response)
        target, query = _following(
            paging, response=response, body=body, records=records, query=query, number=number
        )
    raise InvalidInput(f"stopped after maxPages={paging.max_pages} pages; raise it if needed")


def _json(raw: bytes, response: AsyncResponse) -> Any:
    if not raw:
        return None
    try:
        return bounded.loads(raw, what="the list endpoint's answer")
    except bounded.TooDeep as exc:
        raise InvalidInput(str(exc)) from None
    except bounded.OutOfBounds:
        kind = response.headers.get("Content-Type", "no content type")
        raise InvalidInput(
            f"the list endpoint answered something that is not JSON ({kind})"
        ) from None


def _records(body: Any, path: str) -> list[Any]:
    try:
        found = paths.get(body, path)
    except paths.PathError as exc:
        raise InvalidInput(f"recordsPath {path!r}: {exc}") from None
    if found is None:
        return []
    if not isinstance(found, list):
        raise InvalidInput(f"recordsPath {path or '(the body)'!r} is not a list")
    return found


def _following(
    paging: Paging,
    *,
    response: AsyncResponse,
    body: Any,
    records: list[Any],
    query: dict[str, Any],
    number: int,
) -> tuple[str | None, dict[str, Any]]:
    style = paging.style
    url = response.url.split("?", 1)[0]
    if style == "next_link":
        link = paths.get_or(body, paging.next_path)
        return (str(link) if link else None), {}
    if style == "link_header":
        link = response.links.get("next", {}).get("url")
        return (str(link) if link else None), {}
    if style == "cursor":
        cursor = paths.get_or(body, paging.next_path)
        return (url if cursor else None), {**query, paging.cursor_param: cursor}
    if style == "page":
        total = paths.get_or(body, paging.total_pages_path) if paging.total_pages_path else None
        done = not records or (total is not None and number >= int(total))
        return (None if done else url), {**query, paging.page_param: number + 1}
    if style == "offset":
        size = paging.page_size or len(records)
        done = not records or len(records) < size
        offset = int(query.get(paging.offset_param, 0)) + len(records)
        return (None if done else url), {**query, paging.offset_param: offset}
    return None, query
