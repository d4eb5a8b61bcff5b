"""The credential model: every supported type, parsed from either shape it comes in.

A credential arrives as a credentials-file entry (camelCase: ``accessToken``, ``expiresAt``),
as a token response (snake_case: ``access_token``, ``expires_in``), or as a step's ``cfg``
with the tokens nested under an OAuth field (``{"oauth": {"access_token": ...}}``). It is
written back (``to_keys``) in the shape it came in, so the platform's stored keys stay
readable by whatever wrote them.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from runtime import bounded
from runtime.auth.errors import CredentialError
from runtime.auth.profiles import PROFILES, ProviderProfile, profile_named
from runtime.redact import SECRETS

CredentialType = Literal["none", "bearer", "basic", "api_key", "oauth2"]
RefreshPolicy = Literal["on_401", "proactive", "always"]
ClientAuthLocation = Literal["headers", "body", "both"]
GrantType = Literal["refresh_token", "client_credentials"]
KeyLocation = Literal["header", "query"]

DEFAULT_LIFETIME = 3600.0

_TYPE_ALIASES = {
    "": "none",
    "noauth": "none",
    "token": "bearer",
    "apikey": "api_key",
    "api_key": "api_key",
    "oauth": "oauth2",
    "oauth2": "oauth2",
}
_TOKEN_FIELDS = ("access_token", "refresh_token", "expires_in", "expires_at", "token_type")
_RESPONSE_FIELDS = frozenset({*_TOKEN_FIELDS, "scope"})


class Credentials(BaseModel):
    """One credential of any supported type.

    Parse with ``Credentials.parse(data)``: a wrong or incomplete credential raises one
    ``CredentialError`` naming what is missing.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    type: CredentialType = "none"
    name: str | None = None
    provider: str | None = None
    # bearer
    token: str | None = None
    # basic
    username: str | None = None
    password: str | None = None
    # api_key
    key: str | None = None
    key_name: str | None = None
    key_location: KeyLocation = "header"
    # oauth2
    client_id: str | None = None
    client_secret: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    token_url: str | None = None
    authorize_url: str | None = None
    scopes: list[str] = []
    expires_at: datetime | None = None
    expires_in: float | None = None
    token_type: str = "Bearer"
    grant_type: GrantType | None = None
    refresh: RefreshPolicy | None = None
    client_auth_location: ClientAuthLocation | None = None
    no_refresh_token: bool = False
    default_lifetime: float | None = None
    extra: dict[str, str] = {}
    headers: dict[str, str] = Field(
        default={}, validation_alias=AliasChoices("staticHeaders", "headers", "static_headers")
    )
    """Sent on every request (Xero's tenant header, API versions); ``staticHeaders`` in a
    step's cfg, where ``headers`` belongs to the step."""

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)
    _nested: str | None = PrivateAttr(default=None)
    _snake: bool = PrivateAttr(default=False)

    # --- parsing -----------------------------------------------------------------------

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], *, name: str | None = None, complete: bool = True
    ) -> Credentials:
        """Parse a credential from a file entry, a token response or a step's cfg.

        Args:
            data: the credential's fields, in either shape.
            name: a name for messages, when the data has none.
            complete: check that the credential can be used and refreshed (off only for
                signing in, when there are no tokens yet).

        Raises:
            CredentialError: unknown type, wrong field types or missing fields.
        """
        if not isinstance(data, Mapping):
            raise CredentialError(f"a credential must be a JSON object, not {type(data).__name__}")
        raw = copy.deepcopy(dict(data))
        flat, nested = _flatten(raw)
        snake = nested is not None or any(k in flat for k in _TOKEN_FIELDS)
        flat = _normalise_input(flat, name)
        label = _label(flat)
        try:
            credentials = cls.model_validate(flat)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'type'}: {e['msg']}" for e in exc.errors()
            )
            raise CredentialError(f"{label} is not valid: {details}") from None
        credentials._raw = raw
        credentials._nested = nested
        credentials._snake = snake
        if complete:
            credentials._check_complete()
        SECRETS.add(*credentials.secret_values())
        return credentials

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(",", " ").split()
        return value

    @field_validator("headers", "extra", mode="before")
    @classmethod
    def _parse_json_object(cls, value: Any) -> Any:
        # UI text areas deliver these as JSON text.
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return bounded.loads(value, what="the text", limit=64 * 1024)
            except bounded.OutOfBounds as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("expires_at", mode="before")
    @classmethod
    def _parse_expiry(cls, value: Any) -> Any:
        return parse_instant(value)

    @field_validator("token_type", mode="before")
    @classmethod
    def _normalise_token_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() == "bearer":
            return "Bearer"
        return value or "Bearer"

    def _check_complete(self) -> None:
        label = _label(self.model_dump())
        missing: list[str]
        if self.type == "bearer":
            missing = [] if self.token or self.access_token else ["token"]
        elif self.type == "basic":
            missing = [] if self.username else ["username"]
        elif self.type == "api_key":
            missing = [] if self.key else ["key"]
        elif self.type == "oauth2":
            missing = self._missing_for_refresh()
            if missing and not self.no_refresh_token:
                need = " and ".join(missing)
                hint = (
                    ""
                    if self.access_token is None
                    else (" (or set noRefreshToken: true to use the access token as it is)")
                )
                raise CredentialError(f"{label} needs {need} to refresh{hint}")
            missing = [] if self.access_token or not self.no_refresh_token else ["accessToken"]
        else:
            missing = []
        if missing:
            raise CredentialError(f"{label} needs {' and '.join(missing)}")

    def _missing_for_refresh(self) -> list[str]:
        if self.effective_grant == "client_credentials":
            fields = {"clientId": self.client_id, "clientSecret": self.client_secret}
        else:
            fields = {"refreshToken": self.refresh_token}
        fields["tokenUrl"] = self.token_url
        return [name for name, value in fields.items() if not value]

    # --- derived settings --------------------------------------------------------------

    @property
    def profile(self) -> ProviderProfile | None:
        return PROFILES.get(self.provider or "")

    @property
    def effective_grant(self) -> GrantType:
        if self.grant_type is not None:
            return self.grant_type
        if (
            self.refresh_token is None
            and self.access_token is None
            and self.client_secret
            and not self.no_refresh_token
        ):
            return "client_credentials"
        return "refresh_token"

    @property
    def refresh_policy(self) -> RefreshPolicy:
        profile = self.profile
        return self.refresh or (profile.refresh if profile else "on_401")

    @property
    def client_auth(self) -> ClientAuthLocation:
        profile = self.profile
        return self.client_auth_location or (profile.client_auth if profile else "both")

    @property
    def can_refresh(self) -> bool:
        return (
            self.type == "oauth2"
            and not self._missing_for_refresh()
            and not (self.no_refresh_token and self.effective_grant == "refresh_token")
        )

    @property
    def lifetime_default(self) -> float:
        profile = self.profile
        if self.default_lifetime:
            return self.default_lifetime
        return profile.default_lifetime if profile else DEFAULT_LIFETIME

    @property
    def extras(self) -> dict[str, Any]:
        """Fields the provider sent that the model does not name (``instance_url``, ids)."""
        return dict(self.model_extra or {})

    def identity(self) -> str:
        """A key that stays the same when tokens rotate: for sharing refreshes in a process."""
        parts = [
            self.type,
            self.name or "",
            self.token_url or "",
            self.client_id or "",
            self.username or "",
            self.provider or "",
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    def secret_values(self) -> list[str]:
        values = [
            self.token,
            self.password,
            self.key,
            self.client_secret,
            self.access_token,
            self.refresh_token,
        ]
        return [v for v in values if v]

    def expires_within(self, seconds: float, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at - now <= timedelta(seconds=seconds)

    # --- refreshing and writing back ---------------------------------------------------

    def merged(self, response: Mapping[str, Any], *, now: datetime) -> Credentials:
        """The credential after a token response: merged, never replaced.

        A response without ``refresh_token`` keeps the old one; unknown fields
        (``instance_url``, ids) are kept; ``expires_in`` may be a number or a string and
        defaults to the provider's usual lifetime.
        """
        lifetime = float(parse_seconds(response.get("expires_in")) or self.lifetime_default)
        absolute = parse_instant(response.get("expires_at"))
        update: dict[str, Any] = {
            "access_token": response["access_token"],
            "expires_in": lifetime,
            "expires_at": absolute or now + timedelta(seconds=lifetime),
            "token_type": "Bearer"
            if str(response.get("token_type") or "bearer").lower() == "bearer"
            else str(response["token_type"]),
        }
        if response.get("refresh_token"):
            update["refresh_token"] = response["refresh_token"]
        if "scope" in response:
            update["scope"] = response["scope"]
        update |= {
            name: value
            for name, value in response.items()
            if name not in _RESPONSE_FIELDS and name not in type(self).model_fields
        }
        fresh = self.model_copy(update=update)
        fresh._raw = self._raw
        fresh._nested = self._nested
        fresh._snake = self._snake
        SECRETS.add(*fresh.secret_values())
        return fresh

    def to_keys(self) -> dict[str, Any]:
        """The whole credential as stored keys, in the shape it was read from."""
        keys = copy.deepcopy(self._raw)
        token = self._token_fields()
        if self._nested is not None:
            inner = keys.get(self._nested)
            keys[self._nested] = {**(inner if isinstance(inner, dict) else {}), **token}
        elif self._snake:
            keys.update(token)
        else:
            keys.update({to_camel(k) if k in _TOKEN_FIELDS else k: v for k, v in token.items()})
        return keys

    def _token_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
        }
        if self.refresh_token:
            fields["refresh_token"] = self.refresh_token
        if self.expires_in is not None:
            lifetime = float(self.expires_in)
            fields["expires_in"] = int(lifetime) if lifetime.is_integer() else lifetime
        if self.expires_at is not None:
            fields["expires_at"] = self.expires_at.isoformat().replace("+00:00", "Z")
        fields.update(self.extras)
        return fields


class KeysUpdate(dict[str, Any]):
    """The payload of ``updateKeys``: the whole new credential, as a plain dict.

    ``replaces`` names the stored version these keys succeed (``keys_version`` of the
    credential that was refreshed), so a store that still holds a different one knows another
    process got there first and refuses to overwrite it. None when unknown (a step that
    emitted ``updateKeys`` itself).
    """

    def __init__(self, keys: Mapping[str, Any], *, replaces: str | None = None) -> None:
        super().__init__(keys)
        self.replaces = replaces


def keys_version(keys: Mapping[str, Any] | Credentials) -> str | None:
    """A short hash of the refresh token stored keys hold (else of their access token).

    Saving new keys compares it: a store writes them only while it still holds the version
    they replace, so two processes that refreshed the same credential cannot overwrite each
    other unseen. None when the keys hold no token at all.
    """
    if isinstance(keys, Credentials):
        token = keys.refresh_token or keys.access_token or keys.token
    else:
        flat, _ = _flatten(dict(keys))
        token = next(
            (
                flat[name]
                for name in ("refreshToken", "refresh_token", "accessToken", "access_token")
                if isinstance(flat.get(name), str) and flat[name]
            ),
            None,
        )
    if not token:
        return None
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _flatten(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
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


def _normalise_input(given: dict[str, Any], name: str | None) -> dict[str, Any]:
    # An empty form field means "not set", so provider defaults can fill it.
    data = {k: v for k, v in given.items() if v is not None and v != ""}
    if name and not data.get("name"):
        data["name"] = name
    kind = str(data.get("type", "oauth2" if _looks_oauth(data) else "none"))
    normalised = _TYPE_ALIASES.get(kind.lower().replace("-", "_"), kind.lower())
    if normalised not in get_args(CredentialType):
        known = ", ".join(get_args(CredentialType))
        raise CredentialError(f"{_label(data)} has an unknown type {kind!r}: use one of {known}")
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


def _looks_oauth(data: Mapping[str, Any]) -> bool:
    return any(k in data for k in ("access_token", "accessToken", "refresh_token", "refreshToken"))


def _label(data: Mapping[str, Any]) -> str:
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
