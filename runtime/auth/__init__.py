"""Calling APIs with a credential: signing, refreshing once on 401, never losing a token.

``Credentials`` parses every supported credential; ``AuthorizedSession`` is the
``requests.Session`` sync steps use (``ctx.http`` is one, wired to ``updateKeys``), and
``AsyncAuthorizedSession`` its aiohttp twin for ``async def`` steps; ``credential_use``
gives both a credential with its cache, lock, key or token hooks.
"""

from runtime.auth.async_session import AsyncAuthorizedSession, AsyncResponse
from runtime.auth.credentials import Credentials
from runtime.auth.errors import (
    BodyNotReplayable,
    ClientMisconfigured,
    CredentialError,
    CredentialLockUnavailable,
    InsufficientScope,
    KeysConflict,
    ReauthRequired,
    TokenEndpointUnavailable,
)
from runtime.auth.profiles import PROFILES, ProviderProfile, profile_named
from runtime.auth.session import AuthorizedSession
from runtime.auth.use import CredentialUse, credential_use
from runtime.errors import AuthError

__all__ = [
    "PROFILES",
    "AsyncAuthorizedSession",
    "AsyncResponse",
    "AuthError",
    "AuthorizedSession",
    "BodyNotReplayable",
    "ClientMisconfigured",
    "CredentialError",
    "CredentialLockUnavailable",
    "CredentialUse",
    "Credentials",
    "InsufficientScope",
    "KeysConflict",
    "ProviderProfile",
    "ReauthRequired",
    "TokenEndpointUnavailable",
    "credential_use",
    "profile_named",
]
