"""Templates in step fields: ``{{body.customer.id}}`` takes a value from the incoming message.

* ``{{body.x}}``, ``{{headers.x}}``, ``{{passthrough.step_1.body.x}}`` read the message;
  ``{{cfg.x}}`` reads the step's configuration.
* Inside text the value is inserted as text (objects as JSON).
* A JSON value that is exactly one template (``"{{body.items}}"``) becomes the value itself,
  with its type: a list stays a list, a number a number.
* A path that leads nowhere is an error naming the template, never an empty string.

No expressions, no ``eval``: only paths.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lib import paths
from lib.bodies import json_text
from runtime import InvalidInput

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\[\]-]*)\s*\}\}")


def scope(msg: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "body": msg.body,
        "headers": msg.headers,
        "passthrough": msg.passthrough,
        "attachments": msg.attachments,
        "cfg": cfg,
    }


def _lookup(values: dict[str, Any], path: str) -> Any:
    try:
        return paths.get(values, path)
    except paths.PathError as exc:
        raise InvalidInput(f"template {{{{{path}}}}}: {exc}") from None


def render_text(text: str, values: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = _lookup(values, match.group(1))
        if isinstance(value, str):
            return value
        return json_text(value)

    return _TEMPLATE.sub(replace, text)


def render_value(value: Any, values: dict[str, Any]) -> Any:
    """Render templates inside a JSON value (strings, and strings in lists and objects)."""
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole:
            return _lookup(values, whole.group(1))
        return render_text(value, values)
    if isinstance(value, dict):
        return {render_text(k, values): render_value(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, values) for v in value]
    return value


def json_field(raw: Any, name: str) -> Any:
    """A step field that holds JSON, as text (from the UI) or already parsed."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"field {name!r} is not valid JSON: {exc.msg} at column {exc.colno}"
        ) from None
