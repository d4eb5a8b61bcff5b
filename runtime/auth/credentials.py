"""The credential model: every supported type, parsed from either shape it comes in.

A credential arrives as a credentials-file entry (camelCase: ``accessToken``, ``expiresAt``),
as a token response (snake_case: ``access_token``, ``expires_in``), or as a step's ``cfg``
with the tokens nested under an OAuth field (``{"oauth": {"access_token": ...}}``). It is
written back (``to_keys``) in the shape it came in, so the platform's stored keys stay
readable by whatever wrote them.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from runtime.auth.errors import CredentialError
from runtime.auth.profiles import PROFILES, ProviderProfile
from runtime.auth.shapes import (
    TOKEN_FIELDS,
    CredentialType,
    JsonObjectText,
    bearer_spelling,
    flatten,
    label,
    normalise_input,
    parse_instant,
    parse_seconds,
    split_scopes,
)
from runtime.redact import SECRETS

RefreshPolicy = Literal["on_401", "proactive", "always"]
ClientAuthLocation = Literal["headers", "body", "both"]
GrantType = Literal["refresh_token", "client_credentials"]
KeyLocation = Literal["header", "query"]

DEFAULT_LIFETIME = 3600.0

_RESPONSE_FIELDS = frozenset({*TOKEN_FIELDS, "scope"})


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
    scopes: Annotated[list[str], BeforeValidator(split_scopes)] = []
    expires_at: Annotated[datetime | None, BeforeValidator(parse_instant)] = None
    expires_in: float | None = None
    token_type: Annotated[str, BeforeValidator(bearer_spelling)] = "Bearer"
    grant_type: GrantType | None = None
    refresh: RefreshPolicy | None = None
    client_auth_location: ClientAuthLocation | None = None
    no_refresh_token: bool = False
    default_lifetime: float | None = None
    secret_id: str | None = None
    """Held by the platform (runtime.auth.held): it refreshes the token when asked."""
    extra: JsonObjectText = {}
    headers: JsonObjectText = Field(
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
        flat, nested = flatten(raw)
        snake = nested is not None or any(k in flat for k in TOKEN_FIELDS)
        flat = normalise_input(flat, name)
        described = label(flat)
        try:
            credentials = cls.model_validate(flat)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'type'}: {e['msg']}" for e in exc.errors()
            )
            raise CredentialError(f"{described} is not valid: {details}") from None
        credentials._raw = raw
        credentials._nested = nested
        credentials._snake = snake
        if complete:
            _check_complete(credentials)
        SECRETS.add(*credentials.secret_values())
        return credentials

    def _missing_for_refresh(self) -> list[str]:
        if self.secret_id:
            return []  # the platform holds what a refresh needs
        if self.effective_grant == "client_credentials":
            fields = {"clientId": self.client_id, "clientSecret": self.client_secret}
        else:
            fields = {"refreshToken": self.refresh_token}
        fields["tokenUrl"] = self.token_url
        return [name for name, value in fields.items() if not value]

    # --- derived settings --------------------------------------------------------------

    @functools.cached_property
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

    @functools.cached_property
    def can_refresh(self) -> bool:
        # Asked several times a request; a credential never changes (``merged`` makes a
        # new one, and drops the copied answers).
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
            self.secret_id or "",
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
        for derived in ("can_refresh", "profile"):  # model_copy copied the old answers
            fresh.__dict__.pop(derived, None)
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
            keys.update({to_camel(k) if k in TOKEN_FIELDS else k: v for k, v in token.items()})
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


def _check_complete(credentials: Credentials) -> None:
    """Raise when the credential cannot be used (or refreshed) as it is."""
    described = label(credentials.model_dump())
    missing: list[str]
    if credentials.type == "bearer":
        missing = [] if credentials.token or credentials.access_token else ["token"]
    elif credentials.type == "basic":
        missing = [] if credentials.username else ["username"]
    elif credentials.type == "api_key":
        missing = [] if credentials.key else ["key"]
    elif credentials.type == "oauth2":
        missing = credentials._missing_for_refresh()
        if missing and not credentials.no_refresh_token:
            need = " and ".join(missing)
            hint = (
                ""
                if credentials.access_token is None
                else " (or set noRefreshToken: true to use the access token as it is)"
            )
            raise CredentialError(f"{described} needs {need} to refresh{hint}")
        missing = (
            [] if credentials.access_token or not credentials.no_refresh_token else ["accessToken"]
        )
    else:
        missing = []
    if missing:
        raise CredentialError(f"{described} needs {' and '.join(missing)}")


class KeysUpdate(dict[str, Any]):
    """The payload of ``updateKeys``: the whole new credential, as a plain dict.

    ``replaces`` names the stored version these keys succeed (``keys_version`` of the
    credential that was refreshed), so a store that still holds a different one knows another
    process got there first and refuses to overwrite it. None when unknown (a step that
    emitted ``updateKeys`` itself).
    """

    def __init__(
        self, keys: Mapping[str, Any], *, replaces: str | None = None, kept_by: str | None = None
    ) -> None:
        super().__init__(keys)
        self.replaces = replaces
        self.kept_by = kept_by
        """A store the other replicas read (the credential lock's sealed copy) already
        holds these keys, so they are safe to use even while their own store is down."""
        self.pending = False
        """Set by whoever saves them: their own store (the platform) has not taken them yet
        and they are being saved in the background."""


def keys_version(keys: Mapping[str, Any] | Credentials) -> str | None:
    """A short hash of the refresh token stored keys hold (else of their access token).

    Saving new keys compares it: a store writes them only while it still holds the version
    they replace, so two processes that refreshed the same credential cannot overwrite each
    other unseen. None when the keys hold no token at all.
    """
    if isinstance(keys, Credentials):
        token = keys.refresh_token or keys.access_token or keys.token
    else:
        flat, _ = flatten(dict(keys))
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
