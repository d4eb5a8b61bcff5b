"""Calling APIs with a credential: signing, refreshing once on 401, never losing a token.

``Credentials`` parses every supported credential; ``AuthorizedSession`` is the
``requests.Session`` steps use (``ctx.http`` is one, wired to ``updateKeys``).
"""

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
from runtime.errors import AuthError

__all__ = [
    "PROFILES",
    "AuthError",
    "AuthorizedSession",
    "BodyNotReplayable",
    "ClientMisconfigured",
    "CredentialError",
    "CredentialLockUnavailable",
    "Credentials",
    "InsufficientScope",
    "KeysConflict",
    "ProviderProfile",
    "ReauthRequired",
    "TokenEndpointUnavailable",
    "profile_named",
]
