"""The component descriptor: a model of the whole component.json format, and its checks.

Parsing is strict about what the runtime relies on (every step has a ``main`` that exists,
metadata files exist and hold JSON Schema) and lenient about UI-only extras, which pass
through untouched. Every problem is reported at once, each naming the file, the JSON path
and what is wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.errors import ComponentError

COMPONENT_FILE = "component.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class FieldSpec(_Model):
    """One input field in the platform's UI."""

    label: str | None = None
    view_class: str = Field(alias="viewClass")
    required: bool = False
    model: dict[str, Any] | str | None = None
    prompt: str | None = None
    placeholder: str | None = None
    note: str | None = None


class OAuth2Block(_Model):
    """The platform's OAuth2 flow settings; values may reference ``{{ENV_VAR}}``."""

    client_id: str
    client_secret: str
    auth_uri: str
    token_uri: str
    scopes: list[str] = []


class Credentials(_Model):
    fields: dict[str, FieldSpec] = {}
    oauth2: OAuth2Block | None = None
    oauth1: dict[str, Any] | None = None
    verifier: str | None = None


class Help(_Model):
    description: str | None = None
    link: str | None = None


class Metadata(_Model):
    """JSON Schema of a step's input and output, inline or as a path to a JSON file."""

    in_: dict[str, Any] | str | None = Field(default=None, alias="in")
    out: dict[str, Any] | str | None = None


class StepSpec(_Model):
    """A trigger or an action."""

    main: str
    title: str | None = None
    description: str | None = None
    type: Literal["polling", "webhook"] | None = None
    fields: dict[str, FieldSpec] = {}
    metadata: Metadata | None = None
    dynamic_metadata: bool | str = Field(default=False, alias="dynamicMetadata")
    help: Help | None = None
    auto_resolve_object_references: bool = Field(default=True, alias="autoResolveObjectReferences")
    deprecated: bool = False


class EnvVar(_Model):
    required: bool = False
    description: str | None = None


class ComponentSpec(_Model):
    """The whole component.json."""

    title: str
    description: str | None = None
    version: str | None = None
    docs_url: str | None = Field(default=None, alias="docsUrl")
    build_type: str | None = Field(default=None, alias="buildType")
    deprecated: bool = False
    consumes_raw_data: bool = Field(default=False, alias="consumesRawData")
    env_vars: dict[str, EnvVar] = Field(default={}, alias="envVars")
    use_oauth_client: bool = Field(default=False, alias="useOAuthClient")
    credentials: Credentials | None = None
    triggers: dict[str, StepSpec] = {}
    actions: dict[str, StepSpec] = {}

    def step_names(self) -> list[str]:
        return [*self.triggers, *self.actions]


class Component:
    """A loaded, checked component: its descriptor and the folder it lives in."""

    def __init__(self, root: Path, spec: ComponentSpec) -> None:
        self.root = root
        self.spec = spec

    def find_step(self, name: str) -> tuple[str, StepSpec]:
        """The step of this name and whether it is a trigger or an action (triggers first).

        Raises:
            ComponentError: no trigger or action has this name.
        """
        if name in self.spec.triggers:
            return "triggers", self.spec.triggers[name]
        if name in self.spec.actions:
            return "actions", self.spec.actions[name]
        known = ", ".join(self.spec.step_names()) or "none"
        raise ComponentError(
            [f"{self.root / COMPONENT_FILE}: no trigger or action named {name!r} (known: {known})"]
        )

    def credential_fields(self) -> list[str]:
        """The names of the credential's fields, which the platform merges into ``cfg``."""
        credentials = self.spec.credentials
        return list(credentials.fields) if credentials is not None else []

    def schema(self, step: StepSpec, direction: Literal["in", "out"]) -> dict[str, Any] | None:
        """A step's input or output JSON Schema, read from its file when it is a path."""
        if step.metadata is None:
            return None
        value = step.metadata.in_ if direction == "in" else step.metadata.out
        if isinstance(value, str):
            loaded: dict[str, Any] = json.loads((self.root / value).read_text("utf-8"))
            return loaded
        return value


def component_root(cwd: Path, component_path: str | None) -> Path:
    """Where component.json lives: the working folder, or ELASTICIO_COMPONENT_PATH under it."""
    return (cwd / (component_path or "")).resolve()


def chosen_root(explicit: str | None) -> Path:
    """A command's ``--component DIR`` when given, else as the worker finds it."""
    if explicit:
        return Path(explicit).resolve()
    return component_root(Path.cwd(), os.environ.get("ELASTICIO_COMPONENT_PATH"))


def load_component(root: Path, *, language: Literal["python", "nodejs"] = "python") -> Component:
    """Read and check the component.json in ``root`` (a Node.js component's: its steps'
    files are JavaScript).

    Raises:
        ComponentError: listing every problem found, each with file, JSON path and reason.
    """
    path = root / COMPONENT_FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ComponentError(
            [f"{path}: not found; run from the component's folder or set ELASTICIO_COMPONENT_PATH"]
        ) from None
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno}, column {exc.colno}"
        raise ComponentError([f"{path}: not valid JSON {where}: {exc.msg}"]) from None
    except UnicodeDecodeError as exc:
        raise ComponentError([f"{path}: not UTF-8 text: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ComponentError([f"{path}: $: must be a JSON object, not {_json_type(raw)}"])
    try:
        spec = ComponentSpec.model_validate(raw)
    except ValidationError as exc:
        raise ComponentError([_describe(path, error) for error in exc.errors()]) from None
    problems = _check_files(path, root, spec, ".py" if language == "python" else ".js")
    if not spec.triggers and not spec.actions:
        problems.insert(0, f"{path}: $: needs at least one trigger or action")
    if problems:
        raise ComponentError(problems)
    return Component(root, spec)


def _reason(exc: Exception) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


def _json_path(loc: tuple[int | str, ...]) -> str:
    return "$" + "".join(f"[{item}]" if isinstance(item, int) else f".{item}" for item in loc)


def _describe(path: Path, error: Any) -> str:
    loc = tuple(error["loc"])
    # pydantic adds the union branch tried ("str", "dict[str,any]") to the location.
    while loc and isinstance(loc[-1], str) and loc[-1].startswith(("dict[", "str", "bool")):
        loc = loc[:-1]
    message = "is required" if error["type"] == "missing" else error["msg"].lower()
    return f"{path}: {_json_path(loc)}: {message}"


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _check_files(path: Path, root: Path, spec: ComponentSpec, suffix: str) -> list[str]:
    problems: list[str] = []
    for group, steps in (("triggers", spec.triggers), ("actions", spec.actions)):
        for name, step in steps.items():
            where = f"{path}: $.{group}.{name}"
            main = root / step.main
            if not step.main.strip():
                problems.append(
                    f"{where}.main: is empty; give the path of the step's {suffix} file"
                )
            elif not main.is_file():
                problems.append(f"{where}.main: file {step.main!r} does not exist")
            elif main.suffix != suffix:
                kind = "Python" if suffix == ".py" else "JavaScript"
                problems.append(f"{where}.main: {step.main!r} is not a {kind} ({suffix}) file")
            if step.metadata is not None:
                for direction, value in (("in", step.metadata.in_), ("out", step.metadata.out)):
                    problem = _schema_problem(root, value)
                    if problem:
                        problems.append(f"{where}.metadata.{direction}: {problem}")
    return problems


_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def _schema_problem(root: Path, value: dict[str, Any] | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        file = root / value
        if not file.is_file():
            return f"file {value!r} does not exist"
        try:
            value = json.loads(file.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return f"file {value!r} is not valid JSON: {_reason(exc)}"
        if not isinstance(value, dict):
            return "is not a JSON Schema: the file must hold a JSON object"
        problem = _schema_shape(value)
        return f"file {file.name!r} is not a JSON Schema: {problem}" if problem else None
    problem = _schema_shape(value)
    return f"is not a JSON Schema: {problem}" if problem else None


def _schema_shape(schema: dict[str, Any], where: str = "") -> str | None:
    """The first structural mistake in a JSON Schema, or None; enough to catch wrong files."""
    if not schema:
        return None  # {} is the schema that accepts anything
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    bad = [k for k in kinds if k not in _JSON_TYPES]
    if bad or not all(isinstance(k, str) for k in kinds):
        return f"{where or 'the schema'} has an unknown type {bad[0] if bad else kind!r}"
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            return f"{where or 'the schema'}'s 'properties' must be an object"
        for name, sub in properties.items():
            if not isinstance(sub, dict):
                return f"property {name!r} must be a schema object"
            problem = _schema_shape(sub, f"property {name!r}")
            if problem:
                return problem
    required = schema.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        return f"{where or 'the schema'}'s 'required' must be a list of names"
    items = schema.get("items")
    if isinstance(items, dict):
        return _schema_shape(items, f"{where or 'the schema'}'s items")
    if not where and not kinds and properties is None and not _has_schema_keyword(schema):
        return "it has none of type, properties, items, $ref, allOf, anyOf, oneOf, enum"
    return None


def _has_schema_keyword(schema: dict[str, Any]) -> bool:
    keywords = ("$ref", "allOf", "anyOf", "oneOf", "enum", "const", "items", "$schema")
    return any(k in schema for k in keywords)
