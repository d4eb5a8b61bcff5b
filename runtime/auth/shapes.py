"""The shapes a credential comes in: camelCase file entries, snake_case token responses,
tokens nested under an OAuth field of a step's ``cfg``, and UI text; turned into one
flat, normalised mapping for ``Credentials``, with the parsing of lifetimes and instants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator

from runtime import bounded
from runtime.auth.errors import CredentialError
from runtime.auth.profiles import profile_named

CredentialType = Literal["none", "bearer", "basic", "api_key", "oauth2"]
TOKEN_FIELDS = ("access_token", "refresh_token", "expires_in", "expires_at", "token_type")

_TYPE_ALIASES = {
    "": "none",
    "noauth": "none",
    "token": "bearer",
    "apikey": "api_key",
    "api_key": "api_key",
    "oauth": "oauth2",
    "oauth2": "oauth2",
}


def split_scopes(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    return value


def _json_object_text(value: Any) -> Any:
    # UI text areas deliver these as JSON text.
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            return bounded.loads(value, what="the text", limit=64 * 1024)
        except bounded.OutOfBounds as exc:
            raise ValueError(str(exc)) from None
    return value


def bearer_spelling(value: Any) -> Any:
    if isinstance(value, str) and value.lower() == "bearer":
        return "Bearer"
    return value or "Bearer"


JsonObjectText = Annotated[dict[str, str], BeforeValidator(_json_object_text)]


def flatten(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Lift tokens nested under an OAuth field (``cfg.oauth``) to the top level."""
    if "access_token" in raw or "accessToken" in raw:
        return dict(raw), None
    for key, value in raw.items():
        if isinstance(value, dict) and ("access_token" in value or "refresh_token" in value):
            flat = {k: v for k, v in raw.items() if k != key}
            flat.update(value)
            flat.setdefault("type", "oauth2")
            return flat, key
    return dict(raw), None


def normalise_input(given: dict[str, Any], name: str | None) -> dict[str, Any]:
    # An empty form field means "not set", so provider defaults can fill it.
    data = {k: v for k, v in given.items() if v is not None and v != ""}
    if name and not data.get("name"):
        data["name"] = name
    kind = str(data.get("type", "oauth2" if looks_oauth(data) else "none"))
    normalised = _TYPE_ALIASES.get(kind.lower().replace("-", "_"), kind.lower())
    if normalised not in get_args(CredentialType):
        known = ", ".join(get_args(CredentialType))
        raise CredentialError(f"{label(data)} has an unknown type {kind!r}: use one of {known}")
    data["type"] = normalised
    provider = data.get("provider")
    if provider:
        profile = profile_named(str(provider))
        data["provider"] = profile.name
        for field, value in profile.defaults(data).items():
            data.setdefault(field, value)
    if "scope" in data and "scopes" not in data and normalised == "oauth2":
        data["scopes"] = data["scope"]
    seconds = parse_seconds(data.get("expires_in", data.get("expiresIn")))
    has_expiry = data.get("expires_at") is not None or data.get("expiresAt") is not None
    if seconds is not None:
        data.pop("expiresIn", None)
        data["expires_in"] = seconds
        if not has_expiry:
            issued = parse_instant(data.get("issued_at")) or datetime.now(UTC)
            data["expires_at"] = issued + timedelta(seconds=seconds)
    return data


def looks_oauth(data: Mapping[str, Any]) -> bool:
    return any(k in data for k in ("access_token", "accessToken", "refresh_token", "refreshToken"))


def label(data: Mapping[str, Any]) -> str:
    kind = data.get("type") or "a"
    name = data.get("name")
    return f"{kind} credential {name!r}" if name else f"{kind} credential"


def parse_seconds(value: Any) -> float | None:
    """A lifetime in seconds from an int, float or numeric string; None when absent or junk."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def parse_instant(value: Any) -> datetime | None:
    """A UTC instant from ISO 8601 text, epoch seconds or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        if number > 1e12:  # milliseconds, as Salesforce's issued_at
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
