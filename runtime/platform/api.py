"""The platform's REST API, as the sailor calls it: step data, account keys, hooks data.

Basic auth with ``ELASTICIO_API_USERNAME`` / ``ELASTICIO_API_KEY``; retried
``ELASTICIO_API_REQUEST_RETRY_ATTEMPTS`` times where that is safe (runtime.platform.sessions).
Answers are read within bounds (size, nesting, and ``CALL_SECONDS`` for a whole call):
garbage from the API, or an answer trickling in, is a clear ``PlatformApiError`` naming the
server, never a crash or a hang.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from runtime import bounded
from runtime.deadlines import deadline
from runtime.errors import Error
from runtime.network import describe_failure, host_of
from runtime.platform.sessions import platform_session

TIMEOUT = 15.0
"""Seconds per socket read."""
CALL_SECONDS = 60.0
"""Seconds one call may take in all, retries and reading the answer included."""
ANSWER_LIMIT = 32 * 1024 * 1024
"""Bytes an answer may have: step data carries the step's snapshot, which may be large."""
_STEP_OBJECTS = ("config", "snapshot", "variables")


class PlatformApiError(Error):
    """The platform API refused a call, stayed unreachable, or answered garbage."""

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
        self._host = host_of(self._base)
        self._attempts = max(1, attempts)
        self._http = platform_session(attempts=self._attempts, first_delay=delay_ms / 1000)
        self._http.auth = (username, password)
        self._http.headers["Connection"] = "Keep-Alive"

    @property
    def where(self) -> str:
        """The API, for messages and logs."""
        return f"the platform API at {self._host}"

    def step(self, flow_id: str, step_id: str) -> dict[str, Any]:
        """``GET /v1/tasks/{flow}/steps/{step}``: config, snapshot, variables, passthrough flag."""
        path = f"/v1/tasks/{quote(flow_id)}/steps/{quote(step_id)}"
        data = self._call("GET", path)
        where = f"the step data from the platform API at {self._host}"
        if not isinstance(data, dict):
            raise PlatformApiError(f"{where} is not a JSON object")
        for name in _STEP_OBJECTS:
            if data.get(name) is not None and not isinstance(data[name], dict):
                kind = type(data[name]).__name__
                raise PlatformApiError(f"{where} is unusable: {name!r} is a {kind}, not an object")
        return data

    def update_account(
        self, account_id: str, keys: dict[str, Any], *, replaces: str | None = None
    ) -> None:
        """``PUT /v1/accounts/{id}`` with ``{"keys": ...}``: the credential's stored keys.

        With ``replaces``, the request carries ``If-Match: "<replaces>"``: a platform that
        compares answers 412 (``PlatformApiError.status``) when the account holds other keys.
        """
        headers = {"If-Match": f'"{replaces}"'} if replaces else None
        path = f"/v1/accounts/{quote(str(account_id))}"
        self._call("PUT", path, {"keys": keys}, headers, answer=False)

    def secret(self, workspace_id: str, secret_id: str, *, refresh: bool = False) -> Any:
        """``GET /v2/workspaces/{ws}/secrets/{id}``, or with ``refresh`` ``POST .../refresh``
        (the platform refreshes the secret's token): the answer's ``data.attributes``."""
        path = f"/v2/workspaces/{quote(workspace_id)}/secrets/{quote(secret_id)}"
        answer = self._call("POST" if refresh else "GET", path + ("/refresh" if refresh else ""))
        data = answer.get("data") if isinstance(answer, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(attributes, dict):
            raise PlatformApiError(
                f"the platform API at {self._host} answered the secret {secret_id} without "
                "data.attributes"
            )
        return attributes

    def startup_data(self, flow_id: str, method: str, data: Any = None) -> Any:
        """The startup hook's data: ``POST`` (create), ``GET`` (retrieve) or ``DELETE``."""
        path = f"/sailor-support/hooks/task/{quote(flow_id)}/startup/data"
        return self._call(method, path, data, answer=method == "GET")

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        answer: bool = True,
    ) -> Any:
        """The JSON answer (None when empty, or when ``answer`` is False: not needed)."""

        def too_slow() -> PlatformApiError:
            return PlatformApiError(
                f"{method} {path}: the platform API at {self._host} did not finish answering "
                f"within {CALL_SECONDS:g} s (too slow)"
            )

        with deadline(CALL_SECONDS, too_slow=too_slow):
            return self._exchange(method, path, body, headers, answer=answer)

    def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str] | None,
        *,
        answer: bool,
    ) -> Any:
        try:
            response = self._http.request(
                method, self._base + path, json=body, headers=headers, timeout=TIMEOUT, stream=True
            )
        except requests.RequestException as exc:
            raise PlatformApiError(
                f"{method} {path}: the platform API at {self._host} did not answer after "
                f"{self._attempts} attempts ({describe_failure(exc)})"
            ) from None
        if response.status_code >= 400:
            response.close()
            raise PlatformApiError(
                f"{method} {path} was refused by the platform API at {self._host} "
                f"({response.status_code})",
                response.status_code,
            )
        if not answer:
            response.close()
            return None
        what = f"the answer of the platform API at {self._host} to {method} {path}"
        try:
            raw = bounded.read(response, what=what, limit=ANSWER_LIMIT, seconds=CALL_SECONDS)
            return bounded.loads(raw, what=what) if raw.strip() else None
        except bounded.OutOfBounds as exc:
            raise PlatformApiError(str(exc)) from None
