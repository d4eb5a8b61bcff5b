"""The platform REST API a worker calls, served locally: step data, account keys, hooks data.

``GET /v1/tasks/{flow}/steps/{step}``, ``PUT /v1/accounts/{id}`` (``{"keys": ...}``) and
``POST|GET|DELETE /sailor-support/hooks/task/{flow}/startup/data`` (409 when it exists),
``GET /v2/workspaces/{ws}/secrets/{id}`` and ``POST .../refresh`` (the secrets of
runtime.devtools.localplatform.secrets), all behind the task user's Basic auth, as on the
platform.

An account's keys, once saved, are laid over the configuration of every step that uses it
(its ``_account``), as the platform merges a credential into a step's ``cfg``. A save that
says which keys it replaces (``If-Match: "<keys_version>"``) is refused with 412 when the
account holds others: two processes that refreshed the same credential cannot overwrite
each other unseen.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from runtime.auth.credentials import keys_version
from runtime.devtools.jsonhttp import JsonHandler, JsonServer

OnKeys = Callable[[str, dict[str, Any]], None]

_STEP = re.compile(r"^/v1/tasks/([^/]+)/steps/([^/]+)$")
_ACCOUNT = re.compile(r"^/v1/accounts/([^/]+)$")
_HOOKS = re.compile(r"^/sailor-support/hooks/task/([^/]+)/startup/data$")
_SECRET = re.compile(r"^/v2/workspaces/([^/]+)/secrets/([^/]+?)(/refresh)?$")

Secrets = Callable[[str, bool], dict[str, Any] | None]
"""A secret's attributes by id (refreshed first when asked); None when there is none. May
raise an exception with a ``status`` (what the API answers)."""


@dataclass
class ApiState:
    username: str
    password: str
    steps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    hooks: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    on_keys: OnKeys | None = None
    secrets: Secrets | None = None
    fail_accounts: bool = False
    account_gate: threading.Event | None = None
    """For tests: an account save arriving while this is set waits for the event, then
    fails with 503 without saving anything (as if the caller died before its save)."""
    accounts_waiting: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step_data(self, flow_id: str, step_id: str) -> dict[str, Any] | None:
        with self.lock:
            data = self.steps.get((flow_id, step_id))
            if data is None:
                return None
            found = data.get("config")
            config: dict[str, Any] = found if isinstance(found, dict) else {}
            keys = self.accounts.get(str(config.get("_account")))
            return {**data, "config": {**config, **keys}} if keys else dict(data)

    def save_account(self, account: str, keys: dict[str, Any], replaces: str | None) -> bool:
        """Store an account's keys; False, storing nothing, when it holds others than
        ``replaces`` (keys equal to those held count as saved: a repeated save)."""
        with self.lock:
            held = keys_version(self._account_keys(account))
            if replaces is not None and held not in (None, replaces, keys_version(keys)):
                return False
            self.accounts[account] = keys
            if self.on_keys is not None:
                self.on_keys(account, keys)  # under the lock: copies are written in order
        return True

    def _account_keys(self, account: str) -> dict[str, Any]:
        if account in self.accounts:
            return self.accounts[account]
        for data in self.steps.values():
            config = data.get("config")
            if isinstance(config, dict) and str(config.get("_account")) == account:
                return config
        return {}


class PlatformApiServer:
    """The local platform's API on 127.0.0.1, on a background thread."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        on_keys: OnKeys | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = ApiState(username, password, on_keys=on_keys)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = JsonServer((host, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_step(self, flow_id: str, step_id: str, data: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.steps[(flow_id, step_id)] = data

    def start(self) -> PlatformApiServer:
        threading.Thread(target=self.server.serve_forever, name="platform-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(JsonHandler):
    state: ApiState

    def handle_method(self, method: str) -> None:
        raw = self.read_body()
        state = self.state
        with state.lock:
            state.calls.append((method, self.path))
        if not self._authorised():
            self._reply(401, {"error": "Unauthorized"})
            return
        body = json.loads(raw) if raw else None
        if (match := _STEP.match(self.path)) and method == "GET":
            self._step(unquote(match.group(1)), unquote(match.group(2)))
        elif (match := _ACCOUNT.match(self.path)) and method == "PUT":
            self._account(unquote(match.group(1)), body)
        elif match := _HOOKS.match(self.path):
            self._hooks(method, unquote(match.group(1)), body)
        elif (match := _SECRET.match(self.path)) and method == ("POST" if match[3] else "GET"):
            self._secret(unquote(match.group(2)), refresh=bool(match.group(3)))
        else:
            self._reply(404, {"error": f"no route for {method} {self.path}"})

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user, password) == (self.state.username, self.state.password)

    def _step(self, flow_id: str, step_id: str) -> None:
        data = self.state.step_data(flow_id, step_id)
        if data is None:
            self._reply(404, {"error": f"no step {step_id} in flow {flow_id}"})
        else:
            self._reply(200, data)

    def _account(self, account: str, body: Any) -> None:
        state = self.state
        if state.fail_accounts:
            self._reply(503, {"error": "accounts service unavailable"})
            return
        if not isinstance(body, dict) or not isinstance(body.get("keys"), dict):
            self._reply(400, {"error": 'the body must be {"keys": {...}}'})
            return
        gate = state.account_gate
        if gate is not None:
            with state.lock:
                state.accounts_waiting += 1
            gate.wait(120)
            self._reply(503, {"error": "the save was lost"})
            return
        wanted = self.headers.get("If-Match")
        replaces = wanted.strip().strip('"') if wanted else None
        if not state.save_account(account, body["keys"], replaces):
            self._reply(412, {"error": "the account holds other keys than those replaced"})
            return
        self._reply(200, {"id": account, "keys": "saved"})

    def _secret(self, secret_id: str, *, refresh: bool) -> None:
        secrets = self.state.secrets
        try:
            attributes = None if secrets is None else secrets(secret_id, refresh)
        except Exception as exc:  # noqa: BLE001 - answered as the platform would, with a status
            self._reply(getattr(exc, "status", 500), {"error": str(exc)})
            return
        if attributes is None:
            self._reply(404, {"error": f"no secret {secret_id}"})
        else:
            data = {"id": secret_id, "type": "secret", "attributes": attributes}
            self._reply(200, {"data": data})

    def _hooks(self, method: str, flow_id: str, body: Any) -> None:
        state = self.state
        with state.lock:
            exists = flow_id in state.hooks
            if method == "POST":
                if exists:
                    self._reply(409, {"error": "startup data already exists"})
                    return
                state.hooks[flow_id] = body
                self._reply(200, body)
            elif method == "GET":
                self._reply(200 if exists else 404, state.hooks.get(flow_id, {}))
            elif method == "DELETE":
                state.hooks.pop(flow_id, None)
                self._reply(200, {})
            else:
                self._reply(405, {})

    def _reply(self, status: int, body: Any) -> None:
        self.reply(status, body)
