"""Credentials the platform holds: read by ``secretId``, refreshed by asking the platform.

A step configured with the platform's HTTP auth view (the ``auth`` field of elastic.io's
REST API component) gets no tokens in its ``cfg``, only ``secretId``. The credential is read
from the platform's secrets API, and when the API refuses its token the platform is asked
to refresh it (it holds the client secret and the refresh token; the step never sees
them). That refresh still goes through ``runtime.auth.slots``: one per credential across
threads, processes and machines, and a replica that finds the platform already holds a
newer token than the one refused takes it instead of asking again. The new keys are the
platform's already, so nothing is saved through ``updateKeys``.

Secret types: ``oauth2`` (``access_token``), ``basic`` (``username``, ``password``),
``api_key`` (``headerName``, ``headerValue``: a header), ``noauth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.auth.credentials import Credentials
from runtime.auth.errors import CredentialError

SECRET_FIELD = "secretId"
_TOKEN_FIELDS = ("access_token", "token_type", "expires_in", "refresh_token")


class SecretStore(Protocol):
    """The platform's secrets API (runtime.platform.secrets implements it)."""

    def read(self, secret_id: str) -> Mapping[str, Any]:
        """The secret's attributes: ``{"type": ..., "credentials": {...}}``."""
        ...

    def refresh(self, secret_id: str) -> Mapping[str, Any]:
        """Ask the platform to refresh the secret's token; its attributes afterwards.

        Raises:
            ReauthRequired: the platform could not refresh it (the grant is gone).
            TokenEndpointUnavailable: the platform did not answer.
        """
        ...


def secret_id_of(cfg: Mapping[str, Any]) -> str | None:
    value = cfg.get(SECRET_FIELD)
    return None if value in (None, "") else str(value)


@dataclass(frozen=True)
class HeldCredential:
    """One platform-held credential: how to read it and how to have it refreshed."""

    store: SecretStore
    secret_id: str

    @property
    def key(self) -> str:
        """Its name for the cache and the cross-process lock: the same on every replica."""
        return f"secret:{self.secret_id}"

    def read(self) -> Credentials:
        return credentials_from_secret(self.secret_id, self.store.read(self.secret_id))

    def refresh(self, _seen: Credentials) -> Mapping[str, Any]:
        """The token response to merge: the refreshed secret's token fields."""
        attributes = self.store.refresh(self.secret_id)
        fields = _credential_fields(self.secret_id, attributes)
        return {k: fields[k] for k in _TOKEN_FIELDS if fields.get(k) not in (None, "")}


def credentials_from_secret(secret_id: str, attributes: Mapping[str, Any]) -> Credentials:
    """The credential a secret's attributes describe.

    Raises:
        CredentialError: a type this runtime cannot sign with, or fields missing (named,
            never shown).
    """
    kind = attributes.get("type") if isinstance(attributes, Mapping) else None
    fields = _credential_fields(secret_id, attributes)
    name = str(attributes.get("name") or f"secret {secret_id}")
    data: dict[str, Any]
    if kind == "oauth2":
        data = {
            "type": "oauth2",
            **{k: fields[k] for k in _TOKEN_FIELDS if fields.get(k) not in (None, "")},
        }
        data.pop("expires_in", None)  # as of the platform's last refresh, not of now
    elif kind == "basic":
        data = {"type": "basic", **{k: fields.get(k) for k in ("username", "password")}}
        _require(secret_id, data, ("username", "password"))
    elif kind == "api_key":
        data = {
            "type": "api_key",
            "keyName": fields.get("headerName"),
            "key": fields.get("headerValue"),
            "keyLocation": "header",
        }
        _require(secret_id, data, ("keyName", "key"), shown=("headerName", "headerValue"))
    elif kind in ("noauth", None, ""):
        # A secret without a type signs nothing, as the platform's own steps send it.
        data = {"type": "none"}
    else:
        raise CredentialError(
            f"the platform's secret {secret_id} is of type {kind!r}; this component signs "
            "requests with oauth2, basic, api_key or noauth secrets"
        )
    return Credentials.parse({**data, "name": name, "secretId": secret_id})


def _credential_fields(secret_id: str, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = attributes.get("credentials") if isinstance(attributes, Mapping) else None
    if fields is None and isinstance(attributes, Mapping) and not attributes.get("type"):
        return {}
    if fields is None and isinstance(attributes, Mapping) and attributes.get("type") == "noauth":
        return {}
    if not isinstance(fields, Mapping):
        raise CredentialError(
            f"the platform's secret {secret_id} has no 'credentials' object; the secrets API "
            "answered something else than a secret"
        )
    return fields


def _require(
    secret_id: str,
    data: Mapping[str, Any],
    names: tuple[str, ...],
    shown: tuple[str, ...] | None = None,
) -> None:
    missing = [label for name, label in zip(names, shown or names, strict=True) if not data[name]]
    if missing:
        raise CredentialError(
            f"the platform's secret {secret_id} ({data['type']}) has no {' or '.join(missing)}; "
            "complete the credential on the platform"
        )
