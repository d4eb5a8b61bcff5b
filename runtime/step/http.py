"""``ctx.http`` for a step: a session on the step's credential, saving through ``updateKeys``.

The credential is the part of ``cfg`` that component.json declares as credential fields (the
platform merges credential and step fields into one ``cfg``), so the keys saved after a refresh
are the credential's own and nothing of the step's configuration.

A sync step gets an ``AuthorizedSession``: one per credential and thread, kept from one
message to the next (a thread runs one message at a time), bound afresh to each message's
``updateKeys``. An async step gets an ``AsyncAuthorizedSession`` per message, cheap to make,
on connections the loop's steps share (``HttpPool``); a refresh runs on a thread, and the
keys it saves go out as that message's ``updateKeys``, through the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from requests.adapters import HTTPAdapter

from runtime.auth.async_session import AsyncAuthorizedSession, HttpPool
from runtime.auth.cache import CACHE, CredentialCache
from runtime.auth.credentials import Credentials
from runtime.auth.errors import CredentialError
from runtime.auth.held import HeldCredential, SecretStore, secret_id_of
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.session import AuthorizedSession
from runtime.auth.token_client import TOKEN_TIMEOUT
from runtime.auth.use import CredentialUse, credential_use
from runtime.log import get_logger
from runtime.step.context import AsyncContext, Context

ACCOUNT_FIELD = "_account"
# Token fields are the credential's even when component.json does not list them: the
# platform keeps them under an OAuth field, a credentials file at the top level.
TOKEN_FIELDS = (
    "accessToken", "refreshToken", "expiresAt", "expiresIn", "tokenType",
    "access_token", "refresh_token", "expires_at", "expires_in", "token_type", "instance_url",
)  # fmt: skip
_PARSED_LIMIT = 256

_log = get_logger(__name__)


def _credential_names(fields: Collection[str]) -> tuple[str, ...]:
    """The names of a credential's fields in a cfg: component.json's, then the tokens'."""
    return (*fields, *(t for t in TOKEN_FIELDS if t not in fields))


def _picked(cfg: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The credential's own fields of a step's cfg."""
    return {name: value for name in names if (value := cfg.get(name)) is not None}


def cache_key(cfg: Mapping[str, Any], credentials: Credentials) -> str:
    """The platform's account id when there is one: stable across rotations and steps."""
    account = cfg.get(ACCOUNT_FIELD)
    return f"account:{account}" if account else credentials.identity()


@dataclass(frozen=True)
class CredentialStores:
    """Where a service call's credential lives beside its ``cfg``: the lock its replicas
    refresh under, and the platform's secrets API for a credential the platform holds."""

    lock: CredentialLock = IN_PROCESS
    secrets: SecretStore | None = None


NO_STORES = CredentialStores()


class Sessions:
    """Builds ``ctx.http`` for the steps of a component (a ``HttpFactory``).

    Args:
        credential_fields: the names component.json gives the credential's fields.
        cache: where credentials' live state is shared.
        adapter: a connection pool for the sync sessions.
        pool: the connections of the async sessions (one event loop's).
        fresh_cfg: re-reads the step's configuration from its store (the platform, a
            credentials file), so a token another process rotated is found and used.
        stores: the lock that serialises refreshes with the other processes sharing a
            credential, and the platform's secrets API for steps whose credential the
            platform holds (``secretId`` in their cfg: runtime.auth.held).
        token_timeout: seconds one token refresh may take in all.
        keep: keep one sync session per credential and thread (a worker's runner threads);
            otherwise each message's session is closed when its step ends.
    """

    def __init__(
        self,
        credential_fields: Collection[str],
        *,
        cache: CredentialCache = CACHE,
        adapter: HTTPAdapter | None = None,
        pool: HttpPool | None = None,
        fresh_cfg: Callable[[], Mapping[str, Any]] | None = None,
        stores: CredentialStores = NO_STORES,
        token_timeout: float = TOKEN_TIMEOUT,
        keep: bool = False,
    ) -> None:
        self._fields = tuple(credential_fields)
        self._names = _credential_names(self._fields)
        self._secrets = stores.secrets
        self._held: dict[str, tuple[HeldCredential, Credentials]] = {}
        self._cache = cache
        self._adapter = adapter
        self._pool = pool
        self._fresh_cfg = fresh_cfg
        self._lock = stores.lock
        self._token_timeout = token_timeout
        self._keep = keep
        self._kept = threading.local()
        self._parsed: dict[bytes, Credentials] = {}
        self._uses: dict[tuple[str, bytes], CredentialUse] = {}

    def __call__(self, ctx: Context) -> AuthorizedSession:
        """The sync session for a message's ``ctx``."""
        text, credentials, key, held = self._credential(ctx.cfg)

        def save(keys: dict[str, Any]) -> None:
            if held is None:  # a platform-held credential's new keys are the platform's
                ctx.emit("updateKeys", keys)  # a KeysUpdate: it says which version it replaces

        if not self._keep:
            return self._sync_session(credentials, key, save, held)
        kept: dict[tuple[str, bytes], AuthorizedSession] = self._kept.__dict__.setdefault(
            "sessions", {}
        )
        session = kept.get((key, text))
        if session is None:
            if len(kept) >= _PARSED_LIMIT:
                kept.clear()
            session = kept[(key, text)] = self._sync_session(credentials, key, save, held)
            session.kept = True
        session.begin_message(save)
        return session

    def for_async(self, ctx: AsyncContext) -> AsyncAuthorizedSession:
        """The async session for a message's ``ctx`` (on the running loop)."""
        text, credentials, key, held = self._credential(ctx.cfg)
        loop = asyncio.get_running_loop()

        def save(keys: dict[str, Any]) -> None:
            if held is not None:  # a platform-held credential's new keys are the platform's
                return

            # Called on the refresh's thread: the message's updateKeys goes out on the loop,
            # and the new token is used only once it is saved.
            async def emitted() -> None:
                await ctx.emit("updateKeys", keys)

            asyncio.run_coroutine_threadsafe(emitted(), loop).result()

        use = self._uses.get((key, text)) if text else None
        if use is None:
            use = self._use(credentials, key, held)
            use.shared = True  # by this message's session and the next ones
            if text:
                if len(self._uses) >= _PARSED_LIMIT:
                    self._uses.clear()
                self._uses[(key, text)] = use
        return AsyncAuthorizedSession(use, on_keys=save, pool=self._pool)

    def _sync_session(
        self,
        credentials: Credentials,
        key: str,
        save: Callable[[dict[str, Any]], None],
        held: HeldCredential | None,
    ) -> AuthorizedSession:
        return AuthorizedSession(
            self._use(credentials, key, held), on_keys=save, adapter=self._adapter
        )

    def _use(
        self, credentials: Credentials, key: str, held: HeldCredential | None
    ) -> CredentialUse:
        return credential_use(
            credentials,
            cache=self._cache,
            key=key,
            lock=self._lock,
            token_timeout=self._token_timeout,
            **self._refreshing(held),
        )

    def warm(self, cfg: Mapping[str, Any]) -> None:
        """Read a platform-held credential now, off the event loop (a worker starting), so
        the first message of an async step does not wait on the secrets API on the loop.
        A failure is left for that message to meet, with its error."""
        if secret_id_of(cfg) is None:
            return
        try:
            self._credential(cfg)
        except Exception as exc:  # noqa: BLE001 - reported by the first message that needs it
            _log.warning("secret_not_read", reason=str(exc)[:300])

    def _credential(
        self, cfg: Mapping[str, Any]
    ) -> tuple[bytes, Credentials, str, HeldCredential | None]:
        """The step's credential: its text (to recognise it by), parsed, its key, and how the
        platform holds it when it does."""
        secret_id = secret_id_of(cfg)
        if secret_id is None:
            text, credentials = self._parse(_picked(cfg, self._names))
            return text, credentials, cache_key(cfg, credentials), None
        known = self._held.get(secret_id)
        if known is None:
            if self._secrets is None:
                raise CredentialError(
                    f"the step's credential is held by the platform (secretId {secret_id}), "
                    "but no secrets API is configured: run it on the platform, or set "
                    "ELASTICIO_API_URI, ELASTICIO_API_USERNAME, ELASTICIO_API_KEY and "
                    "ELASTICIO_WORKSPACE_ID"
                )
            held = HeldCredential(self._secrets, secret_id)
            # Read once per process: later messages use the slot's live copy.
            known = self._held[secret_id] = (held, held.read())
        held, credentials = known
        return held.key.encode(), credentials, held.key, held

    def _refreshing(self, held: HeldCredential | None) -> dict[str, Any]:
        """Where a refresh gets its token and re-reads the stored credential."""
        if held is not None:
            return {"refresh_credentials": held.refresh, "reload": held.read}
        return {"reload": self._reload if self._fresh_cfg is not None else None}

    def _reload(self) -> Credentials | None:
        if self._fresh_cfg is None:
            return None
        return Credentials.parse(_picked(self._fresh_cfg(), self._names))

    def _parse(self, part: dict[str, Any]) -> tuple[bytes, Credentials]:
        """Parsed once per distinct credential, not once per message."""
        try:
            text = orjson.dumps(part, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        except TypeError:  # not JSON (a test's cfg, say): nothing to remember it by
            return b"", Credentials.parse(part)
        parsed = self._parsed.get(text)
        if parsed is None:
            if len(self._parsed) >= _PARSED_LIMIT:
                self._parsed.clear()
            parsed = self._parsed[text] = Credentials.parse(part)
        return text, parsed


session_factory = Sessions
"""``Sessions`` for a component with these credential fields (see its arguments)."""
