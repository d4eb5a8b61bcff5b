"""Where ``updateKeys`` goes (DESIGN §6), in order, before the step may use the new token.

1. ``PUT {API_URI}/v1/accounts/{cfg._account}`` with ``{"keys": ...}`` when the step has an
   account, as the Node.js sailor does.
2. The platform exchange on ``ELASTICIO_UPDATE_KEYS_ROUTING_KEY``, encrypted, when set (the
   local platform consumes it into the credentials file).
3. The worker's memory: later messages get the keys laid over their ``cfg``. This comes
   last on purpose: keys that no durable store took must not become the ones in use, or a
   crash would lose a refresh token the provider has already rotated.

With neither an account nor that routing key the keys would only live in memory and die
with the container, so that is an error the step sees, not a silent drop. When one of two
destinations fails, the keys count as saved (and the failure is logged).

Keys from a refresh say which stored version they replace; the PUT carries it as
``If-Match`` and the routing-key message as ``replaces``, so a store holding keys another
process saved meanwhile keeps them (``KeysConflict``) instead of being overwritten.
"""

from __future__ import annotations

from typing import Any

from runtime.auth.credentials import keys_version
from runtime.auth.errors import KeysConflict
from runtime.errors import StepError
from runtime.log import get_logger
from runtime.platform.api import PlatformApi, PlatformApiError
from runtime.worker.crypto import MessageCipher
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.step_state import ACCOUNT_FIELD, StepState
from runtime.worker.wire import encode

_log = get_logger("runtime.worker.keys")


class KeysNotSaved(StepError):
    """The refreshed keys could not be saved; they must not be used."""


class KeySaver:
    def __init__(
        self,
        settings: Settings,
        state: StepState,
        api: PlatformApi,
        publisher: Publisher,
        cipher: MessageCipher,
    ) -> None:
        self._settings = settings
        self._state = state
        self._api = api
        self._publisher = publisher
        self._cipher = cipher

    def save(self, keys: dict[str, Any], cfg: dict[str, Any], headers: dict[str, Any]) -> None:
        """Save the keys everywhere they go.

        Raises:
            KeysNotSaved: nowhere to save them, or a destination refused them.
        """
        account = cfg.get(ACCOUNT_FIELD) or self._state.account
        routing_key = self._settings.update_keys_routing_key
        if not account and not routing_key:
            raise KeysNotSaved(
                "updateKeys has nowhere to go: the step's configuration has no _account and "
                "ELASTICIO_UPDATE_KEYS_ROUTING_KEY is not set, so refreshed tokens would be lost"
            )
        failures: list[str] = []
        saved = False
        replaces: str | None = getattr(keys, "replaces", None)
        if account:
            try:
                self._save_account(str(account), keys, replaces)
                saved = True
            except PlatformApiError as exc:
                failures.append(f"the platform API did not save them ({exc})")
        if routing_key:
            message = {"account": account, "keys": keys, "replaces": replaces}
            body = encode(message, self._cipher, 1)
            try:
                self._publisher.send(routing_key, body, {**headers, "protocolVersion": 1})
                saved = True
            except Exception as exc:  # noqa: BLE001 - reported below, with the other failure
                failures.append(f"publishing them to {routing_key!r} failed ({exc})")
        if not saved:
            raise KeysNotSaved("the refreshed keys were not saved: " + "; ".join(failures))
        if failures:
            _log.warning("keys_partly_saved", problem="; ".join(failures))
        self._state.remember_keys(keys)

    def _save_account(self, account: str, keys: dict[str, Any], replaces: str | None) -> None:
        try:
            self._api.update_account(account, keys, replaces=replaces)
            return
        except PlatformApiError as exc:
            if exc.status != 412:
                raise
        # The platform compared and refused: see what it holds before deciding.
        held = keys_version(self._stored_config())
        if held == keys_version(keys):
            return  # an earlier attempt of this very save went through
        if held != replaces:
            raise KeysConflict(
                f"account {account} holds keys another process saved after these were "
                "refreshed; they were not overwritten and the stored ones will be used"
            )
        # It holds what we replace, so its 412 was about versions it computes differently.
        self._api.update_account(account, keys)

    def _stored_config(self) -> dict[str, Any]:
        settings = self._settings
        config = self._api.step(settings.flow_id, settings.step_id).get("config")
        return config if isinstance(config, dict) else {}
