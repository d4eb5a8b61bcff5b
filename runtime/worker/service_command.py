"""``python -m runtime service verifyCredentials|getMetaModel|selectModel``.

Reads ``ELASTICIO_CFG`` (and ``ELASTICIO_ACTION_OR_TRIGGER``, ``ELASTICIO_GET_MODEL_METHOD``),
runs the call, and POSTs ``{"status": "success"|"error", "data": ...}`` to
``ELASTICIO_POST_RESULT_URL`` as the Node.js sailor does (user:password in that URL becomes
Basic auth). ``updateKeys`` during the call is saved through the accounts API.

Exit codes: 0 a success was posted; 1 an error was posted, or posting failed; 2 there is
nowhere to post (``ELASTICIO_POST_RESULT_URL`` missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests

from runtime import bounded, log
from runtime.auth.lock_store import lock_from_url
from runtime.network import describe_failure, in_words
from runtime.platform.api import PlatformApi
from runtime.platform.secrets import PlatformSecrets
from runtime.platform.sessions import platform_session
from runtime.redact import SECRETS
from runtime.step.component import component_root, load_component
from runtime.step.http import CredentialStores
from runtime.step.service import get_meta_model, select_model, verify_credentials

METHODS = ("verifyCredentials", "getMetaModel", "selectModel")
EXIT_OK, EXIT_ERROR_POSTED, EXIT_NOWHERE = 0, 1, 2
POST_TIMEOUT = 15.0
CFG_LIMIT = 1024 * 1024

_log = log.get_logger(__name__)


class ServiceInputError(Exception):
    """A variable the call needs is missing or malformed."""


def run_service(method: str, env: Mapping[str, str], *, cwd: Path) -> int:
    log.configure()
    url = env.get("ELASTICIO_POST_RESULT_URL")
    if not url:
        _log.error("service_not_run", reason="ELASTICIO_POST_RESULT_URL is not set")
        return EXIT_NOWHERE
    SECRETS.pin(env.get("ELASTICIO_API_KEY"), urlsplit(url).password)
    try:
        data = _call(method, env, cwd)
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the platform
        problem = SECRETS.scrub(in_words(exc) or str(exc))
        _log.error("service_call_failed", method=method, error=problem)
        _post(url, {"status": "error", "data": {"message": problem}}, env)
        return EXIT_ERROR_POSTED
    return EXIT_OK if _post(url, {"status": "success", "data": data}, env) else EXIT_ERROR_POSTED


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ServiceInputError(f"{name} is not provided")
    return value


def _call(method: str, env: Mapping[str, str], cwd: Path) -> Any:
    if method not in METHODS:
        raise ServiceInputError(f'Unknown service method "{method}": use {", ".join(METHODS)}')
    raw_cfg = _required(env, "ELASTICIO_CFG")
    api = PlatformApi(
        _required(env, "ELASTICIO_API_URI"),
        _required(env, "ELASTICIO_API_USERNAME"),
        _required(env, "ELASTICIO_API_KEY"),
    )
    step = _required(env, "ELASTICIO_ACTION_OR_TRIGGER") if method != METHODS[0] else ""
    model = _required(env, "ELASTICIO_GET_MODEL_METHOD") if method == METHODS[2] else ""
    try:
        cfg = bounded.loads(raw_cfg, what="ELASTICIO_CFG", limit=CFG_LIMIT)
    except bounded.OutOfBounds as exc:
        raise ServiceInputError(f"Unable to parse ELASTICIO_CFG: {exc}") from None
    if not isinstance(cfg, dict):
        raise ServiceInputError("ELASTICIO_CFG must be a JSON object")
    SECRETS.add_from(cfg)
    component = load_component(component_root(cwd, env.get("ELASTICIO_COMPONENT_PATH")))
    # Workers of this connection may be refreshing it right now: the same lock as theirs.
    lock = lock_from_url(
        env.get("ELASTICIO_CREDENTIAL_LOCK_URL"),
        secret=env.get("ELASTICIO_MESSAGE_CRYPTO_PASSWORD") or None,
    )

    workspace = env.get("ELASTICIO_WORKSPACE_ID")
    stores = CredentialStores(lock, PlatformSecrets(api, workspace) if workspace else None)

    def save_keys(keys: dict[str, Any]) -> None:
        account = cfg.get("_account")
        if not account:
            # Setting up a new connection: the platform has no account to save to yet.
            _log.warning("refreshed_keys_not_saved", reason="cfg has no _account yet")
            return
        api.update_account(str(account), keys, replaces=getattr(keys, "replaces", None))

    try:
        if method == "verifyCredentials":
            return verify_credentials(component, cfg, save_keys, stores=stores)
        if method == "getMetaModel":
            return get_meta_model(component, step, cfg, save_keys, stores=stores)
        return select_model(component, step, model, cfg, save_keys, stores=stores)
    finally:
        api.close()


def _post(url: str, result: dict[str, Any], env: Mapping[str, str]) -> bool:
    parts = urlsplit(url)
    auth = None
    if parts.username:
        auth = (unquote(parts.username), unquote(parts.password or ""))
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    target = urlunsplit(parts)
    attempts = int(env.get("ELASTICIO_API_REQUEST_RETRY_ATTEMPTS") or 3)
    delay = int(env.get("ELASTICIO_API_REQUEST_RETRY_DELAY") or 100) / 1000
    # Posting a result twice changes nothing for the platform; losing it fails the call.
    with platform_session(
        attempts=attempts, first_delay=delay, also_retry=frozenset({"POST"})
    ) as http:
        try:
            response = http.post(target, json=result, auth=auth, timeout=POST_TIMEOUT)
        except requests.RequestException as exc:
            problem = describe_failure(exc)
        else:
            if response.status_code == 200:
                _log.info("service_result_posted", status=result["status"])
                return True
            problem = f"{response.status_code}, {response.text[:200]}"
    _log.error("service_result_not_posted", reason=f"Failed to POST data to {target} ({problem})")
    return False
