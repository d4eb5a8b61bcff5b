"""``verifyCredentials``: does the API accept this credential?

It calls the credential's identity endpoint: ``verifyPath`` when set, else the provider
profile's (Graph ``/me``, Xero ``/connections``, Salesforce ``/services/oauth2/userinfo``),
else the base URL. A 401 or 403 (after the one refresh the helper allows) means "not
verified", with a reason a user can act on. Network errors, timeouts and 5xx are not a
verdict on the credential: they raise, so the platform reports a failed check instead of
a bad key. A refreshed token is saved through ``updateKeys``. A credential the platform
holds (``secretId``) with no endpoint to call is verified by reading it: the secrets API
has it, complete (an OAuth2 secret with an access token), or the check fails saying why.

The platform's own REST component is verified with the credential as its UI stores it,
``{"auth": {"type": "OAuth2", "oauth2": {"keys": {...}}}}`` or ``"Basic Auth"`` with
``basic``; that shape is checked as that component checks it, without calling the API:
an OAuth2 credential needs keys holding an access token (a refresh token may be missing),
a basic one a username and a password.
"""

from __future__ import annotations

from typing import Any

from runtime import AsyncContext, StepError
from runtime.auth import ClientMisconfigured, ReauthRequired


class CheckFailed(StepError):
    """The check itself could not be made; says nothing about the credential."""


async def verify(ctx: AsyncContext, credentials: dict[str, Any]) -> dict[str, Any]:
    auth = credentials.get("auth")
    if isinstance(auth, dict):
        return _platform_form(auth)
    http = ctx.http  # a platform-held credential is read from the secrets API here
    if credentials.get("secretId"):
        held = http.credentials
        if held.type == "oauth2" and not held.access_token:
            return {
                "verified": False,
                "reason": "the platform holds no access token for this OAuth2 secret; "
                "reconnect it so the provider issues one",
            }
        if not _has_target(http, credentials):
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


def _platform_form(auth: dict[str, Any]) -> dict[str, Any]:
    """The platform's REST component's own check of its credential form."""
    kind = auth.get("type")
    if kind == "OAuth2":
        keys = (auth.get("oauth2") or {}).get("keys")
        if not isinstance(keys, dict) or not keys:
            return _refused(
                "the OAuth2 provider returned no keys for this credential; connect it again"
            )
        if not keys.get("access_token"):
            return _refused("the OAuth2 provider returned no access token; reconnect")
    if kind == "Basic Auth":
        basic = auth.get("basic") or {}
        for field in ("username", "password"):
            if not basic.get(field):
                return _refused(f"basic auth needs a {field}")
    return {"verified": True}


def _refused(reason: str) -> dict[str, Any]:
    return {"verified": False, "reason": reason}


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
