"""The platform REST API a worker calls, served locally: step data, account keys, hooks data;
and the flows' webhooks on the same port.

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

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from runtime.auth.credentials import keys_version

OnKeys = Callable[[str, dict[str, Any]], None]

Secrets = Callable[[str, bool], dict[str, Any] | None]
"""A secret's attributes by id (refreshed first when asked); None when there is none. May
raise an exception with a ``status`` (what the API answers)."""


@dataclass
class ApiState:
    username: str
    password: str
    steps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, init=False)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    hooks: dict[str, Any] = field(default_factory=dict, init=False)
    calls: list[tuple[str, str]] = field(default_factory=list, init=False)
    on_keys: OnKeys | None = None
    secrets: Secrets | None = field(default=None, init=False)
    fail_accounts: bool = field(default=False, init=False)
    account_gate: threading.Event | None = field(default=None, init=False)
    """For tests: an account save arriving while this is set waits for the event, then
    fails with 503 without saving anything (as if the caller died before its save)."""
    accounts_waiting: int = field(default=0, init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)

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


Webhooks = Callable[["web.Request"], Awaitable["web.StreamResponse"]]
"""Answers ``/hook/{flowId}[/more/path]`` (runtime.devtools.localplatform.webhooks)."""


class PlatformApiServer:
    """The local platform's HTTP side on one port, served by aiohttp on a thread of its own:
    the platform API the workers call, and the flows' webhooks."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        on_keys: OnKeys | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        webhooks: Webhooks | None = None,
        body_limit: int = 10 * 1024 * 1024,
    ) -> None:
        self.state = ApiState(username, password, on_keys=on_keys)
        self.webhooks = webhooks
        self._host, self._port = host, port
        self._body_limit = body_limit
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="platform-api",
                                         daemon=True)  # fmt: skip

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def add_step(self, flow_id: str, step_id: str, data: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.steps[(flow_id, step_id)] = data

    def start(self) -> PlatformApiServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(30)
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=self._body_limit)
        api = _Api(self.state)
        app.router.add_route("GET", "/v1/tasks/{flow}/steps/{step}", api.step)
        app.router.add_route("PUT", "/v1/accounts/{account}", api.account)
        app.router.add_route("*", "/sailor-support/hooks/task/{flow}/startup/data", api.hooks)
        app.router.add_route("GET", "/v2/workspaces/{ws}/secrets/{secret}", api.secret)
        app.router.add_route("POST", "/v2/workspaces/{ws}/secrets/{secret}/refresh", api.refresh)
        if self.webhooks is not None:
            app.router.add_route("*", "/hook/{flow}", self.webhooks)
            app.router.add_route("*", "/hook/{flow}/{more:.*}", self.webhooks)
        app.router.add_route("*", "/{tail:.*}", api.no_route)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        if self._port == 0:
            self._port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            with contextlib.suppress(Exception):
                future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _reply(status: int, body: Any) -> web.Response:
    return web.json_response(body, status=status)


class _Api:
    """The platform API's routes, behind the task user's Basic auth."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    def _allowed(self, request: web.Request) -> bool:
        with self.state.lock:
            self.state.calls.append((request.method, request.path))
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (user, password) == (self.state.username, self.state.password)

    async def no_route(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return _reply(401, {"error": "Unauthorized"})
        return _reply(404, {"error": f"no route for {request.method} {request.path}"})

    async def step(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return _reply(401, {"error": "Unauthorized"})
        flow_id, step_id = request.match_info["flow"], request.match_info["step"]
        data = self.state.step_data(flow_id, step_id)
        if data is None:
            return _reply(404, {"error": f"no step {step_id} in flow {flow_id}"})
        return _reply(200, data)

    async def account(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return _reply(401, {"error": "Unauthorized"})
        state = self.state
        body = await _json(request)
        if state.fail_accounts:
            return _reply(503, {"error": "accounts service unavailable"})
        if not isinstance(body, dict) or not isinstance(body.get("keys"), dict):
            return _reply(400, {"error": 'the body must be {"keys": {...}}'})
        gate = state.account_gate
        if gate is not None:
            with state.lock:
                state.accounts_waiting += 1
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 120)
            return _reply(503, {"error": "the save was lost"})
        wanted = request.headers.get("If-Match")
        replaces = wanted.strip().strip('"') if wanted else None
        account = request.match_info["account"]
        saved = await asyncio.get_running_loop().run_in_executor(
            None, state.save_account, account, body["keys"], replaces
        )
        if not saved:
            return _reply(412, {"error": "the account holds other keys than those replaced"})
        return _reply(200, {"id": account, "keys": "saved"})

    async def secret(self, request: web.Request) -> web.Response:
        return await self._secret(request, refresh=False)

    async def refresh(self, request: web.Request) -> web.Response:
        return await self._secret(request, refresh=True)

    async def _secret(self, request: web.Request, *, refresh: bool) -> web.Response:
        if not self._allowed(request):
            return _reply(401, {"error": "Unauthorized"})
        secret_id = request.match_info["secret"]
        secrets = self.state.secrets
        try:
            attributes = (
                None
                if secrets is None
                else await asyncio.get_running_loop().run_in_executor(
                    None, secrets, secret_id, refresh
                )
            )
        except Exception as exc:  # noqa: BLE001 - answered as the platform would, with a status
            return _reply(getattr(exc, "status", 500), {"error": str(exc)})
        if attributes is None:
            return _reply(404, {"error": f"no secret {secret_id}"})
        data = {"id": secret_id, "type": "secret", "attributes": attributes}
        return _reply(200, {"data": data})

    async def hooks(self, request: web.Request) -> web.Response:
        if not self._allowed(request):
            return _reply(401, {"error": "Unauthorized"})
        state, method = self.state, request.method
        flow_id = request.match_info["flow"]
        body = await _json(request)
        with state.lock:
            exists = flow_id in state.hooks
            if method == "POST":
                if exists:
                    return _reply(409, {"error": "startup data already exists"})
                state.hooks[flow_id] = body
                return _reply(200, body)
            if method == "GET":
                return _reply(200 if exists else 404, state.hooks.get(flow_id, {}))
            if method == "DELETE":
                state.hooks.pop(flow_id, None)
                return _reply(200, {})
        return _reply(405, {})


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
