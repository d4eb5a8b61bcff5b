"""``ctx.http`` for a step: an ``AuthorizedSession`` on the step's credential, saving through
``updateKeys``.

The credential is the part of ``cfg`` that component.json declares as credential fields (the
platform merges credential and step fields into one ``cfg``), so the keys saved after a refresh
are the credential's own and nothing of the step's configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from requests.adapters import HTTPAdapter

from runtime.auth.credentials import Credentials
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.auth.session import AuthorizedSession
from runtime.auth.slots import CACHE, CredentialCache
from runtime.auth.token_client import TOKEN_TIMEOUT
from runtime.step.context import Context, HttpFactory

ACCOUNT_FIELD = "_account"
# Token fields are the credential's even when component.json does not list them: the
# platform keeps them under an OAuth field, a credentials file at the top level.
TOKEN_FIELDS = (
    "accessToken", "refreshToken", "expiresAt", "expiresIn", "tokenType",
    "access_token", "refresh_token", "expires_at", "expires_in", "token_type", "instance_url",
)  # fmt: skip


def credential_part(cfg: Mapping[str, Any], fields: Collection[str]) -> dict[str, Any]:
    """The credential's own fields of a step's cfg."""
    names = [*fields, *(t for t in TOKEN_FIELDS if t not in fields)]
    return {name: cfg[name] for name in names if name in cfg and cfg[name] is not None}


def cache_key(cfg: Mapping[str, Any], credentials: Credentials) -> str:
    """The platform's account id when there is one: stable across rotations and steps."""
    account = cfg.get(ACCOUNT_FIELD)
    return f"account:{account}" if account else credentials.identity()


def session_factory(
    credential_fields: Collection[str],
    *,
    cache: CredentialCache = CACHE,
    adapter: HTTPAdapter | None = None,
    fresh_cfg: Callable[[], Mapping[str, Any]] | None = None,
    lock: CredentialLock = IN_PROCESS,
    token_timeout: float = TOKEN_TIMEOUT,
) -> HttpFactory:
    """Builds ``ctx.http`` sessions for steps of a component with these credential fields.

    Args:
        credential_fields: the names component.json gives the credential's fields.
        cache: where credentials' live state is shared.
        adapter: a connection pool shared by the sessions.
        fresh_cfg: re-reads the step's configuration from its store (the platform, a
            credentials file), so a token another process rotated is found and used.
        lock: serialises refreshes with the other processes sharing a credential.
        token_timeout: seconds one token refresh may take in all.
    """

    def reload() -> Credentials | None:
        if fresh_cfg is None:
            return None
        return Credentials.parse(credential_part(fresh_cfg(), credential_fields))

    def build(ctx: Context) -> AuthorizedSession:
        part = credential_part(ctx.cfg, credential_fields)
        credentials = Credentials.parse(part)

        def save(keys: dict[str, Any]) -> None:
            ctx.emit("updateKeys", keys)  # a KeysUpdate: it says which version it replaces

        return AuthorizedSession(
            credentials,
            on_keys=save,
            cache=cache,
            key=cache_key(ctx.cfg, credentials),
            adapter=adapter,
            reload=reload if fresh_cfg is not None else None,
            lock=lock,
            token_timeout=token_timeout,
        )

    return build
