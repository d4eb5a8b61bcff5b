"""The demo provider's routes: the OAuth2 endpoints, the protected API, and the
``/_admin`` routes tests use."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from runtime.devtools.demo.state import API_KEY, BASIC_USER, TENANTS, DemoState, make_record
from runtime.devtools.demo.tokens import GrantRefused
from runtime.devtools.jsonhttp import JsonHandler

Reply = tuple[int, dict[str, str], Any]


def handler_for(api: DemoState) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        demo = api

    return Handler


class _Handler(JsonHandler):
    demo: DemoState

    def handle_method(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.query = dict(parse_qsl(parts.query))
        self.raw_body = self.read_body()
        route = _ROUTES.get(parts.path)
        if route is None and parts.path.startswith("/api/status/"):
            route = _status
        if route is None and parts.path.startswith("/api/records/"):
            route = _record
        if route is None:
            self._reply((404, {}, {"error": "not_found", "path": parts.path}))
            return
        if parts.path.startswith("/api/") and not self._authorised():
            with self.demo.lock:
                self.demo.unauthorized += 1
            self._reply(
                (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                 {"error": "invalid_token", "message": "the access token expired or is unknown"})
            )  # fmt: skip
            return
        if parts.path.startswith("/api/"):
            with self.demo.lock:
                self.demo.api_calls += 1
        self._reply(route(self, method))

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return self.demo.book.access_valid(header[7:].strip())
        if header.lower().startswith("basic "):
            return _basic(header) == BASIC_USER
        return self.headers.get("X-API-Key") == API_KEY or self.query.get("api_key") == API_KEY

    def json_body(self) -> Any:
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            return None

    def form_body(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_body.decode()))

    def _reply(self, reply: Reply) -> None:
        status, headers, body = reply
        self.reply(status, body, headers)

    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"


def _basic(header: str) -> tuple[str, str] | None:
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        return None
    return user, password


# --- OAuth2 ----------------------------------------------------------------------------


def _token(handler: _Handler, method: str) -> Reply:
    if method != "POST":
        return 405, {}, {"error": "method_not_allowed"}
    basic = None
    header = handler.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        pair = _basic(header)
        if pair is not None:
            basic = (unquote_plus(pair[0]), unquote_plus(pair[1]))
    try:
        answer = handler.demo.book.grant(handler.form_body(), basic)
    except GrantRefused as refused:
        return refused.status, {}, {"error": refused.error}
    return 200, {"Cache-Control": "no-store"}, answer


def _authorize(handler: _Handler, method: str) -> Reply:
    query = handler.query
    settings = handler.demo.book.settings
    if query.get("client_id") != settings.client_id or "redirect_uri" not in query:
        return 400, {}, {"error": "invalid_request"}
    challenge = query.get("code_challenge")
    code = handler.demo.book.issue_code(query["redirect_uri"], challenge)
    target = (
        query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
    )
    return 302, {"Location": target}, {"redirect": target}


# --- the protected API -----------------------------------------------------------------


def _me(handler: _Handler, method: str) -> Reply:
    return 200, {}, {"id": "user-1", "name": "Demo User", "email": "demo@example.com"}


def _tenants(handler: _Handler, method: str) -> Reply:
    return 200, {}, TENANTS


def _records(handler: _Handler, method: str) -> Reply:
    demo = handler.demo
    if method == "POST":
        body = handler.json_body() or {}
        with demo.lock:
            record = {**make_record(len(demo.records) + 1), **body}
            demo.records.append(record)
        return 201, {}, record
    query = handler.query
    with demo.lock:
        items = list(demo.records)
    if "since" in query:
        items = [r for r in items if r["updated_at"] > query["since"]]
    if "after_id" in query:
        items = [r for r in items if int(r["id"]) > int(query["after_id"])]
    start = int(query.get("offset") or 0) + (int(query.get("page") or 1) - 1) * int(
        query.get("page_size") or query.get("limit") or 10
    )
    if "fail_after" in query and start >= int(query["fail_after"]):
        return 500, {}, {"error": "server_error", "message": "the demo API failed on purpose"}
    return _paginate(handler, items)


def _paginate(handler: _Handler, items: list[dict[str, Any]]) -> Reply:
    query = handler.query
    style = query.get("style", "next")
    size = int(query.get("page_size") or query.get("limit") or 10)
    path = handler.base() + "/api/records"

    def link(**changes: Any) -> str:
        return path + "?" + urlencode({**query, **{k: str(v) for k, v in changes.items()}})

    if style == "page":
        page = int(query.get("page") or 1)
        total_pages = max(1, -(-len(items) // size))
        chunk = items[(page - 1) * size : page * size]
        return 200, {}, {"items": chunk, "page": page, "total_pages": total_pages}
    if style == "offset":
        offset = int(query.get("offset") or 0)
        chunk = items[offset : offset + size]
        return 200, {}, {"items": chunk, "offset": offset, "limit": size, "total": len(items)}
    if style == "cursor":
        start = int(query.get("cursor") or 0)
        chunk = items[start : start + size]
        more = start + size < len(items)
        return 200, {}, {"items": chunk, "next_cursor": str(start + size) if more else None}
    start = int(query.get("offset") or 0)
    chunk = items[start : start + size]
    following = link(offset=start + size) if start + size < len(items) else None
    if style == "link":
        headers = {"Link": f'<{following}>; rel="next"'} if following else {}
        return 200, headers, chunk
    return 200, {}, {"items": chunk, "next": following}


def _record(handler: _Handler, method: str) -> Reply:
    wanted = urlsplit(handler.path).path.rsplit("/", 1)[-1]
    with handler.demo.lock:
        found = [r for r in handler.demo.records if str(r["id"]) == wanted]
    if not found:
        return 404, {}, {"error": "not_found", "message": f"no record {wanted}"}
    return 200, {}, found[0]


def _echo(handler: _Handler, method: str) -> Reply:
    body = handler.json_body()
    if body is None and handler.raw_body:
        is_form = "urlencoded" in handler.headers.get("Content-Type", "")
        form = handler.form_body() if is_form else None
        body = form or handler.raw_body.decode(errors="replace")
    return (
        200,
        {"X-Echo": "yes"},
        {
            "method": method,
            "query": handler.query,
            "headers": {k: v for k, v in handler.headers.items() if k.lower() != "authorization"},
            "body": body,
        },
    )


def _upload(handler: _Handler, method: str) -> Reply:
    """What arrived: the body's type, size and digest, and each part of a multipart body."""
    kind = handler.headers.get("Content-Type", "")
    raw = handler.raw_body
    answer: dict[str, Any] = {
        "contentType": kind,
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    if kind.startswith("multipart/"):
        parsed = BytesParser(policy=email_policy.default).parsebytes(
            f"Content-Type: {kind}\r\n\r\n".encode() + raw
        )
        parts = []
        for part in parsed.iter_parts():
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            parts.append(
                {
                    "name": part.get_param("name", header="content-disposition"),
                    "filename": part.get_filename(),
                    "contentType": part.get_content_type(),
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "text": content.decode(errors="replace") if len(content) <= 200 else None,
                }
            )
        answer["parts"] = parts
    return 200, {}, answer


def _limited(handler: _Handler, method: str) -> Reply:
    """Answers 429 ``times`` times per ``key``, then 200."""
    key = handler.query.get("key", "default")
    times = int(handler.query.get("times", 1))
    with handler.demo.lock:
        seen = handler.demo.limited.get(key, 0)
        handler.demo.limited[key] = seen + 1
    if seen < times:
        retry_after = handler.query.get("retry_after", "1")
        status = int(handler.query.get("status", 429))
        return status, {"Retry-After": retry_after}, {"error": "rate_limited", "attempt": seen + 1}
    return 200, {}, {"ok": True, "attempts": seen + 1}


def _status(handler: _Handler, method: str) -> Reply:
    code = int(urlsplit(handler.path).path.rsplit("/", 1)[-1])
    return code, {}, {"status": code}


def _big(handler: _Handler, method: str) -> Reply:
    size = int(handler.query.get("bytes", 1024))
    return 200, {}, b"x" * size


# --- admin, for tests ------------------------------------------------------------------


def _admin_stats(handler: _Handler, method: str) -> Reply:
    return 200, {}, handler.demo.stats()


def _admin_expire(handler: _Handler, method: str) -> Reply:
    handler.demo.book.expire_all()
    return 200, {}, {"expired": True}


def _admin_alive(handler: _Handler, method: str) -> Reply:
    """Whether a refresh token (in the JSON body) would be honoured: the grant is alive."""
    token = str((handler.json_body() or {}).get("refresh_token") or "")
    return 200, {}, {"alive": handler.demo.book.refresh_token_alive(token)}


def _admin_records(handler: _Handler, method: str) -> Reply:
    body = handler.json_body() or {}
    demo = handler.demo
    with demo.lock:
        for _ in range(int(body.get("add", 0))):
            demo.records.append(make_record(len(demo.records) + 1))
        total = len(demo.records)
    return 200, {}, {"total": total}


def _admin_settings(handler: _Handler, method: str) -> Reply:
    settings = handler.demo.book.settings
    for name, value in (handler.json_body() or {}).items():
        if hasattr(settings, name):
            setattr(settings, name, value)
    return 200, {}, asdict(settings) | {"client_secret": "***"}


_ROUTES: dict[str, Callable[[_Handler, str], Reply]] = {
    "/oauth/token": _token,
    "/oauth/authorize": _authorize,
    "/api/me": _me,
    "/api/tenants": _tenants,
    "/api/records": _records,
    "/api/echo": _echo,
    "/api/limited": _limited,
    "/api/upload": _upload,
    "/api/big": _big,
    "/_admin/stats": _admin_stats,
    "/_admin/expire": _admin_expire,
    "/_admin/alive": _admin_alive,
    "/_admin/records": _admin_records,
    "/_admin/settings": _admin_settings,
}
