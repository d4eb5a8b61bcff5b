"""Where ``updateKeys`` goes (DESIGN §6), in order, before the step may use the new token.

1. ``PUT {API_URI}/v1/accounts/{cfg._account}`` with ``{"keys": ...}`` when the step has an
   account, as the Node.js sailor does.
2. The platform exchange on ``ELASTICIO_UPDATE_KEYS_ROUTING_KEY``, encrypted, when set (the
   local platform consumes it into the credentials file).
3. The worker's memory: later messages get the keys laid over their ``cfg``. This comes
   last on purpose: keys that no durable store took must not become the ones in use, or a
   crash would lose a refresh token the provider has already rotated.

With neither an account nor that routing key the keys would only live in memory and die
with the container, so that is an error the step sees, not a silent drop. Keys count as
saved when one destination took them, or when the credential lock's store already keeps
them for the other replicas (``KeysUpdate.kept_by``). A platform that did not take them
gets them again from the background (runtime.worker.key_retries), and the worker waits for
that when it stops; keys that no store at all took fail the step and are not used.

Keys from a refresh say which stored version they replace; the PUT carries it as
``If-Match`` and the routing-key message as ``replaces``, so a store holding keys another
process saved meanwhile keeps them (``KeysConflict``) instead of being overwritten.
"""

from __future__ import annotations

from typing import Any

from runtime.auth.credentials import KeysUpdate, keys_version
from runtime.auth.errors import KeysConflict
from runtime.errors import StepError
from runtime.log import get_logger
from runtime.platform.api import PlatformApi, PlatformApiError
from runtime.worker.crypto import MessageCipher
from runtime.worker.key_retries import KeyRetries, Unsaved
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.step_state import ACCOUNT_FIELD, StepState
from runtime.worker.wire import encode

_log = get_logger(__name__)


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
        self._retries = KeyRetries(self._save_account, api.where)

    def settle(self, seconds: float) -> list[Unsaved]:
        """At shutdown: keep saving what the platform has not taken, for up to ``seconds``;
        what is still unsaved then."""
        return self._retries.settle(seconds)

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
        kept_by: str | None = getattr(keys, "kept_by", None)
        if account:
            try:
                with self._retries.account_lock(str(account)):
                    self._save_account(str(account), keys, replaces)
                saved = True
                self._retries.saved(str(account))
            except PlatformApiError as exc:
                failures.append(f"the platform API did not save them ({exc})")
                self._retries.add(str(account), keys, replaces)
        published = False
        if routing_key:
            message = {"account": account, "keys": keys, "replaces": replaces}
            body = encode(message, self._cipher, 1)
            try:
                self._publisher.send(routing_key, body, {**headers, "protocolVersion": 1})
                published = True
            except Exception as exc:  # noqa: BLE001 - reported below, with the other failure
                failures.append(f"publishing them to {routing_key!r} failed ({exc})")
        problem = "; ".join(failures)
        if not (saved or published or kept_by):
            _log.error(
                "keys_not_saved",
                store=self._api.where if account else routing_key,
                attempt=1,
                reason=problem,
                next="not used: the step fails, the keys are kept aside and saved before any "
                "other refresh" + (", and retried in the background" if account else ""),
            )
            raise KeysNotSaved("the refreshed keys were not saved: " + problem)
        if account and not saved:
            if isinstance(keys, KeysUpdate):
                keys.pending = True
            _log.warning(
                "keys_not_saved",
                store=self._api.where,
                attempt=1,
                reason=problem,
                next=f"used, as {kept_by or repr(routing_key)} holds them; the platform gets "
                "them from the background, and the worker waits for that when it stops",
            )
        elif failures:
            _log.warning("keys_partly_saved", problem=problem)
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
