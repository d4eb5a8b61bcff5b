"""What a step's configuration asks to send, read once per configuration.

Each of ``url``, ``query``, ``headers`` and ``body`` is either plain text with ``{{path}}``
templates (the default, and what older configurations hold) or a JSONata expression, chosen
per field by ``urlMode``, ``queryMode``, ``headersMode`` and ``bodyMode``
(``text`` or ``jsonata``). A configuration written for the platform's REST API component
(its ``reader`` object: ``url``, ``headers`` as key/value pairs, ``body.raw``,
``body.urlencoded``, ``body.formData``, every value a JSONata expression) is read as is,
and its expressions see what they saw there: the message's body, with the passthrough
under ``elasticio``.

Plans are cached by the fields they are built from, so expressions compile once per
configuration, not once per message; a credential's tokens changing does not rebuild them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lib.bodies import TEXT_TYPES, XML_TYPES, content_type_of
from lib.templating import json_field, render_text, render_value
from runtime import InvalidInput
from runtime import compiled_expression as compiled

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MODES = ("text", "jsonata")
PLAN_FIELDS = (
    "method", "url", "urlMode", "query", "queryMode", "headers", "headersMode",
    "body", "bodyMode", "bodyType", "reader",
)  # fmt: skip


class Value(Protocol):
    def value(self, scope: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class Absent:
    def value(self, scope: Mapping[str, Any]) -> Any:
        return None


@dataclass(frozen=True)
class Text:
    """Plain text; ``{{path}}`` templates become text."""

    text: str

    def value(self, scope: Mapping[str, Any]) -> Any:
        return render_text(self.text, dict(scope))


@dataclass(frozen=True)
class Json:
    """A JSON value whose strings may hold templates (a whole-string one keeps its type)."""

    parsed: Any

    def value(self, scope: Mapping[str, Any]) -> Any:
        return render_value(self.parsed, dict(scope))


@dataclass(frozen=True)
class Jsonata:
    """An expression over the whole message; or, for configurations written for the
    platform's component (``on_body``), over the body with the passthrough in
    ``body.elasticio``, as that component evaluates them."""

    text: str
    field: str
    on_body: bool = False

    def __post_init__(self) -> None:
        compiled(self.text, self.field)  # a bad expression fails the plan, named

    def value(self, scope: Mapping[str, Any]) -> Any:
        data = {k: scope[k] for k in ("body", "headers", "passthrough", "attachments")}
        expression = compiled(self.text, self.field)
        if self.on_body:
            body = data["body"]
            if isinstance(body, dict) and data["passthrough"]:
                if "elasticio" in body:
                    raise InvalidInput(
                        "the message's body has an 'elasticio' key, which the platform's steps "
                        "keep for the passthrough their expressions read; rename that key, or "
                        "turn the passthrough off for this flow"
                    )
                body = {**body, "elasticio": data["passthrough"]}
            return expression.evaluate(body, scope.get("flowVariables"), data["passthrough"])
        return expression.evaluate(data, scope.get("flowVariables"), data["passthrough"])


@dataclass(frozen=True)
class Pairs:
    """Key/value rows (the platform's request view): an object built from the rows."""

    rows: tuple[tuple[str, Value], ...]

    def value(self, scope: Mapping[str, Any]) -> Any:
        return {key: row.value(scope) for key, row in self.rows}


@dataclass(frozen=True)
class Plan:
    method: str
    url: Value
    query: Value
    headers: Value
    body: Value
    content_type: str
    """The body's content type as configured; ``""`` when the step does not say."""
    reader: bool = False
    """Written for the platform's REST API component (its ``reader`` object): sent as that
    component sends it (lib/rest_call.py)."""


def plan_for(cfg: Mapping[str, Any]) -> Plan:
    """The plan for a step's configuration (from the cache when seen before)."""
    relevant = {name: cfg.get(name) for name in PLAN_FIELDS if cfg.get(name) not in (None, "")}
    return _plan(json.dumps(relevant, sort_keys=True, default=str))


@functools.lru_cache(maxsize=256)
def _plan(key: str) -> Plan:
    cfg = json.loads(key)
    reader = cfg.get("reader")
    if isinstance(reader, dict):
        return _from_reader(reader)
    if reader is not None:
        raise InvalidInput("field 'reader' must be an object (the platform's request view)")
    method = _method(cfg.get("method"))
    content_type = str(cfg.get("bodyType") or "").strip().lower()
    return Plan(
        method=method,
        url=_field(cfg, "url", json_valued=False),
        query=_field(cfg, "query", json_valued=True),
        headers=_field(cfg, "headers", json_valued=True),
        body=_field(cfg, "body", json_valued=not _is_text_type(content_type)),
        content_type=content_type,
    )


def _field(cfg: Mapping[str, Any], name: str, *, json_valued: bool) -> Value:
    raw = cfg.get(name)
    mode = str(cfg.get(f"{name}Mode") or "text").strip().lower()
    if mode not in MODES:
        raise InvalidInput(f"field '{name}Mode' is {mode!r}; use 'text' or 'jsonata'")
    if raw in (None, ""):
        return Absent()
    if mode == "jsonata":
        if not isinstance(raw, str):
            raise InvalidInput(f"field {name!r} is in JSONata mode but is not text")
        return Jsonata(raw, name)
    if json_valued:
        return Json(json_field(raw, name))
    return Text(raw if isinstance(raw, str) else json.dumps(raw))


def _from_reader(reader: Mapping[str, Any]) -> Plan:
    url = reader.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("field 'reader.url' is empty: give the URL as a JSONata expression")
    given = reader.get("body")
    body: dict[str, Any] = given if isinstance(given, dict) else {}
    content_type = str(body.get("contentType") or "").strip().lower()
    rows = body.get("formData") if content_type == "multipart/form-data" else None
    if content_type == "application/x-www-form-urlencoded":
        rows = body.get("urlencoded")
    body_value: Value
    if rows:  # the request view keeps an empty list for a form without rows
        body_value = _pairs(rows, "reader.body")
    elif isinstance(body.get("raw"), str) and body["raw"].strip():
        body_value = Jsonata(body["raw"], "reader.body.raw", on_body=True)
    else:
        body_value = Absent()
    if reader.get("method") in (None, ""):
        # The platform's component refuses it too: a guessed GET could read the wrong thing.
        raise InvalidInput(
            f"field 'reader.method' is empty; choose the method ({', '.join(METHODS[:5])})"
        )
    return Plan(
        method=_method(reader.get("method")),
        url=Jsonata(url, "reader.url", on_body=True),
        query=Absent(),
        headers=_pairs(reader.get("headers") or [], "reader.headers"),
        body=body_value,
        content_type=content_type,
        reader=True,
    )


def _pairs(rows: Any, where: str) -> Pairs:
    if not isinstance(rows, list):
        raise InvalidInput(f"field {where!r} must be a list of {{key, value}} rows")
    built: list[tuple[str, Value]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("key"):
            continue  # the request view leaves empty rows behind
        value = row.get("value")
        if not isinstance(value, str):
            raise InvalidInput(f"field '{where}[{index}].value' must be a JSONata expression")
        name = f"{where}[{index}] ({row['key']})"
        built.append((str(row["key"]), Jsonata(value, name, on_body=True)))
    return Pairs(tuple(built))


def _method(raw: Any) -> str:
    method = str(raw or "GET").strip().upper()
    if method not in METHODS:
        raise InvalidInput(f"method {method!r} is not one of {', '.join(METHODS)}")
    return method


def _is_text_type(content_type: str) -> bool:
    """Whether a text-mode body is the text itself (not JSON): text, XML, HTML, bytes."""
    kind = content_type_of(content_type)
    return kind in TEXT_TYPES or kind in XML_TYPES or kind == "application/octet-stream"
