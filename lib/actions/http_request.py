"""Action ``httpRequest``: one HTTP call, built from the step's fields and the message.

Fields (all may hold ``{{body.x}}`` templates, see lib/templating.py):

* ``method``: GET, POST, PUT, PATCH, DELETE (default GET);
* ``url``: absolute, or a path relative to the credential's base URL;
* ``query`` and ``headers``: JSON objects;
* ``bodyType``: ``json`` (default), ``form`` or ``none``; ``body``: JSON; when empty, a
  POST/PUT/PATCH sends the incoming message's body;
* ``passNonSuccess``: pass non-2xx responses on as data instead of failing;
* ``reboundOnRateLimit``: a 429 or 503 (after the helper's own retries), or a token refresh
  that cannot happen now (the token endpoint or the replicas' credential lock unavailable),
  rebounds the message instead of failing it;
* ``maxResponseBytes``: larger responses fail clearly (default 10 MiB);
* ``tenantId``: a tenant chosen from the ``tenants`` dynamic select.

The response becomes one ``data`` message ``{statusCode, headers, body}``.
"""

from __future__ import annotations

from typing import Any

from lib.http import (
    DEFAULT_MAX_BYTES,
    HttpStatusError,
    as_message,
    read_limited,
    snippet,
    tenant_header,
)
from lib.selects import objects, tenants
from lib.templating import json_field, render_text, render_value, scope
from runtime import AuthError, Context, InvalidInput, Message

__all__ = ["objects", "process", "tenants"]

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
RATE_LIMITED = frozenset({429, 503})


def process(
    ctx: Context, msg: Message, cfg: dict[str, Any], snapshot: dict[str, Any]
) -> dict[str, Any] | None:
    values = scope(msg, cfg)
    method = str(cfg.get("method") or "GET").upper()
    if method not in METHODS:
        raise InvalidInput(f"method {method!r} is not one of {', '.join(sorted(METHODS))}")
    url = render_text(str(cfg.get("url") or ""), values).strip()
    if not url:
        raise InvalidInput("field 'url' is empty: give a URL or a path under the base URL")
    query = _texts(render_value(json_field(cfg.get("query"), "query") or {}, values), "query")
    headers = _texts(
        render_value(json_field(cfg.get("headers"), "headers") or {}, values), "headers"
    )
    headers = {**tenant_header(ctx, cfg.get("tenantId")), **headers}
    options: dict[str, Any] = {"params": query, "headers": headers, "stream": True}
    if cfg.get("timeout"):
        options["timeout"] = float(cfg["timeout"])
    _add_body(options, method, cfg, msg, values)
    limit = int(cfg.get("maxResponseBytes") or DEFAULT_MAX_BYTES)

    rebound = _true(cfg.get("reboundOnRateLimit"))
    try:
        response = ctx.http.request(method, url, **options)
    except AuthError as exc:
        if rebound and getattr(exc, "retryable", False):
            ctx.emit("rebound", exc)
            return None
        raise
    raw = read_limited(response, limit)
    ctx.log.info("http_response", method=method, status=response.status_code, bytes=len(raw))
    if response.ok or _true(cfg.get("passNonSuccess")):
        return {"body": as_message(response, raw)}
    if response.status_code in RATE_LIMITED and rebound:
        ctx.emit("rebound", f"the API answered {response.status_code}; trying again later")
        return None
    raise HttpStatusError(response, snippet(raw))


def _add_body(
    options: dict[str, Any],
    method: str,
    cfg: dict[str, Any],
    msg: Message,
    values: dict[str, Any],
) -> None:
    kind = str(cfg.get("bodyType") or "json").lower()
    if kind == "none" or method not in WITH_BODY:
        return
    template = json_field(cfg.get("body"), "body")
    body = msg.body if template is None else render_value(template, values)
    if kind == "form":
        if not isinstance(body, dict):
            raise InvalidInput("a form body must be a JSON object of fields")
        options["data"] = {k: v if isinstance(v, str) else str(v) for k, v in body.items()}
    elif kind == "json":
        options["json"] = body
    else:
        raise InvalidInput(f"bodyType {kind!r} is not one of json, form, none")


def _texts(values: Any, name: str) -> dict[str, Any]:
    """Header and query values as text (a whole-value template may give a number)."""
    if not isinstance(values, dict):
        raise InvalidInput(f"field {name!r} must be a JSON object")
    return {
        str(k): [str(i) for i in v] if isinstance(v, list) else ("" if v is None else str(v))
        for k, v in values.items()
    }


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))
