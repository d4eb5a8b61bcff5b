"""The platform's secrets API, locally: each credentials-file entry is a secret of its name.

``GET /v2/workspaces/{ws}/secrets/{name}`` answers the entry as the platform shapes a
secret (``{"data": {"attributes": {"type", "credentials"}}}``: an OAuth2 entry gives only
its access token, as a step needs nothing more); ``POST .../refresh`` refreshes the entry's
token at its token endpoint, as the platform does with the auth client it holds, writes the
new keys back to the file, and answers the secret. Refreshes of one secret run one at a
time, and each is counted (``refreshes``), so tests and the demo can check that replicas
asked once per expiry.
"""

from __future__ import annotations

import collections
import threading
from datetime import UTC, datetime
from typing import Any

import requests

from runtime.auth.credentials import Credentials, keys_version
from runtime.auth.errors import CredentialError, TokenEndpointUnavailable
from runtime.auth.token_client import request_token
from runtime.devtools.credentials_file import CredentialsFile
from runtime.errors import AuthError


class SecretRefused(Exception):
    """The refresh failed: ``status`` is what the secrets API answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class FileSecrets:
    def __init__(self, store: CredentialsFile) -> None:
        self._store = store
        self._locks: collections.defaultdict[str, threading.Lock] = collections.defaultdict(
            threading.Lock
        )
        self.refreshes: collections.Counter[str] = collections.Counter()

    def __call__(self, name: str, refresh: bool) -> dict[str, Any] | None:
        """The secret's attributes; None when there is no such entry."""
        if name not in self._store.names():
            return None
        if refresh:
            self._refresh(name)
        return attributes_of(name, self._store.load(name, complete=False))

    def _refresh(self, name: str) -> None:
        with self._locks[name]:
            current = self._store.load(name)
            if not current.can_refresh:
                raise SecretRefused(409, f"secret {name} cannot be refreshed")
            with requests.Session() as http:
                try:
                    response = request_token(current, http=http)
                except AuthError as exc:
                    # As the platform would: 409 when the grant is gone, 503 when the
                    # provider could not be asked.
                    status = 503 if isinstance(exc, TokenEndpointUnavailable) else 409
                    reason = f"the token endpoint refused: {type(exc).__name__}"
                    raise SecretRefused(status, reason) from None
            fresh = current.merged(response, now=datetime.now(UTC))
            self._store.save(name, fresh.to_keys(), replaces=keys_version(current))
            self.refreshes[name] += 1


def attributes_of(name: str, credentials: Credentials) -> dict[str, Any]:
    """A credential as the platform describes a secret."""
    kind = credentials.type
    if kind in {"oauth2", "bearer"}:
        token = credentials.access_token or credentials.token
        return {"name": name, "state": "ready", "type": "oauth2",
                "credentials": {"access_token": token}}  # fmt: skip
    if kind == "basic":
        fields = {"username": credentials.username, "password": credentials.password}
        return {"name": name, "state": "ready", "type": "basic", "credentials": fields}
    if kind == "api_key":
        fields = {"headerName": credentials.key_name, "headerValue": credentials.key}
        return {"name": name, "state": "ready", "type": "api_key", "credentials": fields}
    if kind == "none":
        return {"name": name, "state": "ready", "type": "noauth", "credentials": {}}
    raise CredentialError(f"credential {name!r} of type {kind!r} cannot be served as a secret")
