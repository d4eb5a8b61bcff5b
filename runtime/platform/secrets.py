"""The platform's secrets API as the credentials of steps use it (runtime.auth.held).

``GET /v2/workspaces/{workspace}/secrets/{id}`` reads a secret, ``POST .../refresh`` has the
platform refresh its token; both with the task user's Basic auth, as elastic.io's
component commons library calls them. Failures become the errors a credential raises, so a
step reports them as it would a token endpoint's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.auth.errors import CredentialError, ReauthRequired, TokenEndpointUnavailable
from runtime.platform.api import PlatformApi, PlatformApiError


class PlatformSecrets:
    """A workspace's secrets (implements ``runtime.auth.held.SecretStore``)."""

    def __init__(self, api: PlatformApi, workspace_id: str) -> None:
        self._api = api
        self._workspace = workspace_id

    def read(self, secret_id: str) -> Mapping[str, Any]:
        try:
            attributes: Mapping[str, Any] = self._api.secret(self._workspace, secret_id)
        except PlatformApiError as exc:
            if exc.status in (403, 404):
                raise CredentialError(
                    f"the platform has no secret {secret_id} in workspace {self._workspace} "
                    f"({exc.status}); choose the credential again in the step"
                ) from None
            raise
        return attributes

    def refresh(self, secret_id: str) -> Mapping[str, Any]:
        try:
            attributes: Mapping[str, Any] = self._api.secret(
                self._workspace, secret_id, refresh=True
            )
        except PlatformApiError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                raise ReauthRequired(
                    f"the platform could not refresh the token of secret {secret_id} "
                    f"({exc.status}); the user may need to reconnect the credential"
                ) from None
            raise TokenEndpointUnavailable(
                f"the platform did not refresh secret {secret_id}: {exc}"
            ) from None
        return attributes


def from_env(env: Mapping[str, str]) -> PlatformSecrets | None:
    """The secrets API the platform's variables name; None when they are not all set."""
    names = ("ELASTICIO_API_URI", "ELASTICIO_API_USERNAME", "ELASTICIO_API_KEY",
             "ELASTICIO_WORKSPACE_ID")  # fmt: skip
    if not all(env.get(name) for name in names):
        return None
    api = PlatformApi(env[names[0]], env[names[1]], env[names[2]])
    return PlatformSecrets(api, env[names[3]])
