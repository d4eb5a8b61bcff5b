"""What can go wrong when calling an API with a credential, each saying what to do.

::

    InvalidInput (runtime.errors)
    └── CredentialError        the credential is incomplete or of an unknown type: fix the config
    AuthError (runtime.errors)
    ├── ReauthRequired         the refresh token was refused, or the API refused a fresh token:
    │                          the user must reconnect the credential
    ├── ClientMisconfigured    the OAuth2 client id/secret or the requested scopes were refused
    ├── InsufficientScope      the API answered 403: the token lacks a permission
    ├── TokenEndpointUnavailable
    │                          the token endpoint failed transiently (5xx, 429, network) past the
    │                          retry budget: try again later
    ├── CredentialLockUnavailable
    │                          the cross-process lock could not be had in time (its store is down
    │                          or another replica held it too long); nothing was refreshed: retry
    └── KeysConflict           the stored keys changed between reading and saving them (another
                               process refreshed, or the user reconnected): not overwritten
    StepError (runtime.errors)
    └── BodyNotReplayable      a one-shot stream body cannot be sent a second time
"""

from __future__ import annotations

from runtime.errors import AuthError, InvalidInput, StepError


class CredentialError(InvalidInput):
    """The credential is missing fields or has an unknown type or option."""


class ReauthRequired(AuthError):
    """The provider no longer accepts this credential; a person must sign in again."""


class ClientMisconfigured(AuthError):
    """The OAuth2 client (id, secret, scopes, redirect) was refused by the provider."""


class InsufficientScope(AuthError):
    """The API accepted the token but refused the operation (403)."""


class TokenEndpointUnavailable(AuthError):
    """The token endpoint kept failing for reasons that may pass (5xx, 429, network)."""

    retryable = True


class CredentialLockUnavailable(AuthError):
    """The lock that serialises refreshes across replicas could not be had; no refresh ran."""

    retryable = True


class KeysConflict(AuthError):
    """A store refused new keys because what it holds is no longer what they replace."""


class BodyNotReplayable(StepError):
    """The request must be sent again, but its body was a stream that is already used up."""
