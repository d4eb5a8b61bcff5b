"""The platform's REST API, as the sailor calls it: step data, account keys, hooks data.

Basic auth with ``ELASTICIO_API_USERNAME`` / ``ELASTICIO_API_KEY``; server errors and network
failures are retried ``ELASTICIO_API_REQUEST_RETRY_ATTEMPTS`` times.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from runtime.errors import Error
from runtime.http_retry import send

TIMEOUT = 15.0


class PlatformApiError(Error):
    """The platform API refused a call or stayed unreachable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlatformApi:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        attempts: int = 3,
        delay_ms: int = 100,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = requests.Session()
        self._http.auth = (username, password)
        self._http.headers["Connection"] = "Keep-Alive"
        self._attempts = max(1, attempts)
        self._delay = delay_ms / 1000

    def step(self, flow_id: str, step_id: str) -> dict[str, Any]:
        """``GET /v1/tasks/{flow}/steps/{step}``: config, snapshot, variables, passthrough flag."""
        data = self._call("GET", f"/v1/tasks/{quote(flow_id)}/steps/{quote(step_id)}")
        if not isinstance(data, dict):
            raise PlatformApiError("the step data is not a JSON object")
        return data

    def update_account(
        self, account_id: str, keys: dict[str, Any], *, replaces: str | None = None
    ) -> None:
        """``PUT /v1/accounts/{id}`` with ``{"keys": ...}``: the credential's stored keys.

        With ``replaces``, the request carries ``If-Match: "<replaces>"``: a platform that
        compares answers 412 (``PlatformApiError.status``) when the account holds other keys.
        """
        headers = {"If-Match": f'"{replaces}"'} if replaces else None
        self._call("PUT", f"/v1/accounts/{quote(str(account_id))}", {"keys": keys}, headers)

    def startup_data(self, flow_id: str, method: str, data: Any = None) -> Any:
        """The startup hook's data: ``POST`` (create), ``GET`` (retrieve) or ``DELETE``."""
        return self._call(method, f"/sailor-support/hooks/task/{quote(flow_id)}/startup/data", data)

    def close(self) -> None:
        self._http.close()

    def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        outcome = send(
            self._http,
            method,
            self._base + path,
            attempts=self._attempts,
            first_delay=self._delay,
            json=body,
            headers=headers,
            timeout=TIMEOUT,
        )
        response = outcome.response
        if response is None:
            raise PlatformApiError(
                f"{method} {path}: the platform API at {self._base} did not answer "
                f"after {self._attempts} attempts ({outcome.problem})"
            )
        if response.status_code >= 400:
            raise PlatformApiError(
                f"{method} {path} was refused by the platform API ({response.status_code})",
                response.status_code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None
