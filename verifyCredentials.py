"""``verifyCredentials``: does the API accept this credential?

It calls the credential's identity endpoint: ``verifyPath`` when set, else the provider
profile's (Graph ``/me``, Xero ``/connections``, Salesforce ``/services/oauth2/userinfo``),
else the base URL. A 401 or 403 (after the one refresh the helper allows) means "not
verified", with a reason a user can act on. Network errors, timeouts and 5xx are not a
verdict on the credential: they raise, so the platform reports a failed check instead of
a bad key. A refreshed token is saved through ``updateKeys``. A credential the platform
holds (``secretId``) with no endpoint to call is verified by reading it: the secrets API
has it, complete, or the check fails saying why.
"""

from __future__ import annotations

from typing import Any

from runtime import AsyncContext, StepError
from runtime.auth import ClientMisconfigured, ReauthRequired


class CheckFailed(StepError):
    """The check itself could not be made; says nothing about the credential."""


async def verify(ctx: AsyncContext, credentials: dict[str, Any]) -> dict[str, Any]:
    http = ctx.http  # a platform-held credential is read from the secrets API here
    if credentials.get("secretId") and not _has_target(http, credentials):
        return {"verified": True}
    target = _target(http, credentials)
    try:
        response = await http.get(target)
    except (ReauthRequired, ClientMisconfigured) as exc:
        return {"verified": False, "reason": str(exc)}
    if response.status_code in (401, 403):
        reason = (
            "the API rejected the credential (401): check the token, key or password"
            if response.status_code == 401
            else "the API accepted the credential but refused access (403): it lacks a "
            "permission or scope needed for this endpoint"
        )
        return {"verified": False, "reason": reason}
    if response.status_code >= 500:
        raise CheckFailed(
            f"could not check the credential: the API answered {response.status_code}; "
            "try again later"
        )
    if not response.ok:
        return {
            "verified": False,
            "reason": f"the verification endpoint answered {response.status_code}; check "
            "'verifyPath' and the base URL",
        }
    return {"verified": True}


def _has_target(http: Any, credentials: dict[str, Any]) -> bool:
    try:
        _target(http, credentials)
    except CheckFailed:
        return False
    return True


def _target(http: Any, credentials: dict[str, Any]) -> str:
    explicit = str(credentials.get("verifyPath") or "").strip()
    if explicit:
        return explicit
    profile = getattr(getattr(http, "credentials", None), "profile", None)
    if profile is not None:
        return str(profile.identity_url)
    base = getattr(http, "base_url", None)
    if not base:
        raise CheckFailed("set 'verifyPath' or a base URL so the credential can be checked")
    return str(base)
