"""Provider profiles: what differs between OAuth2 providers, as data rather than code.

Facts from the providers' documentation (see ../shared/reference/oauth-anchors.md §8):
Microsoft rotates refresh tokens on every use and expects them renewed regularly; Salesforce
sends no ``expires_in`` and an ``instance_url`` that is the API's base URL; Xero and
QuickBooks rotate refresh tokens (Xero accepts the previous one for 30 minutes); Google
returns a refresh token only on first consent, so the old one must be kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.auth.errors import CredentialError


@dataclass(frozen=True)
class ProviderProfile:
    """How one OAuth2 provider issues, refreshes and checks tokens."""

    name: str
    title: str
    token_url: str
    authorize_url: str
    client_auth: Literal["headers", "body", "both"]
    refresh: Literal["on_401", "proactive", "always"]
    rotates_refresh_tokens: bool
    default_lifetime: float
    identity_url: str
    """An endpoint that answers 200 for a working token: used to verify credentials."""
    base_url: str | None = None
    base_url_field: str | None = None
    """A token-response field holding the API's base URL (Salesforce ``instance_url``)."""
    reuse_grace_seconds: float = 0.0
    """How long the provider accepts a refresh token again after rotating it."""
    header_fields: Mapping[str, str] = field(default_factory=dict)
    """Request headers taken from credential fields (Xero's tenant id)."""
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    default_scopes: tuple[str, ...] = ()

    def defaults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Values a credential of this provider gets unless it sets its own."""
        tenant = str(data.get("tenant") or data.get("tenantId") or "common")
        values: dict[str, Any] = {
            "type": "oauth2",
            "token_url": self.token_url.replace("{tenant}", tenant),
            "authorize_url": self.authorize_url.replace("{tenant}", tenant),
        }
        if self.default_scopes:
            values["scopes"] = list(self.default_scopes)
        present = {k for k in data if data[k] not in (None, "")}
        camel = {"token_url": "tokenUrl", "authorize_url": "authorizeUrl", "scopes": "scopes"}
        return {k: v for k, v in values.items() if k not in present and camel.get(k) not in present}

    def static_headers(self, credential_fields: Mapping[str, Any]) -> dict[str, str]:
        return {
            header: str(credential_fields[source])
            for header, source in self.header_fields.items()
            if credential_fields.get(source)
        }


PROFILES: dict[str, ProviderProfile] = {
    profile.name: profile
    for profile in (
        ProviderProfile(
            name="microsoft",
            title="Microsoft Graph (Entra ID)",
            token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
            authorize_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
            client_auth="body",
            refresh="always",
            rotates_refresh_tokens=True,
            default_lifetime=3600,
            identity_url="https://graph.microsoft.com/v1.0/me",
            base_url="https://graph.microsoft.com/v1.0",
            default_scopes=("offline_access", "User.Read"),
        ),
        ProviderProfile(
            name="salesforce",
            title="Salesforce",
            token_url="https://login.salesforce.com/services/oauth2/token",
            authorize_url="https://login.salesforce.com/services/oauth2/authorize",
            client_auth="body",
            refresh="on_401",
            rotates_refresh_tokens=False,
            # No expires_in in Salesforce's responses; two hours is the default session.
            default_lifetime=7200,
            identity_url="/services/oauth2/userinfo",
            base_url_field="instance_url",
            default_scopes=("api", "refresh_token"),
        ),
        ProviderProfile(
            name="xero",
            title="Xero",
            token_url="https://identity.xero.com/connect/token",
            authorize_url="https://login.xero.com/identity/connect/authorize",
            client_auth="headers",
            refresh="proactive",
            rotates_refresh_tokens=True,
            default_lifetime=1800,
            identity_url="https://api.xero.com/connections",
            base_url="https://api.xero.com/api.xro/2.0",
            reuse_grace_seconds=1800,
            header_fields={"Xero-Tenant-Id": "tenantId"},
            default_scopes=("offline_access", "accounting.transactions"),
        ),
        ProviderProfile(
            name="quickbooks",
            title="QuickBooks Online (Intuit)",
            token_url="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
            authorize_url="https://appcenter.intuit.com/connect/oauth2",
            client_auth="headers",
            refresh="proactive",
            rotates_refresh_tokens=True,
            default_lifetime=3600,
            identity_url="https://accounts.platform.intuit.com/v1/openid_connect/userinfo",
            base_url="https://quickbooks.api.intuit.com/v3/company",
            default_scopes=("com.intuit.quickbooks.accounting", "openid"),
        ),
        ProviderProfile(
            name="google",
            title="Google",
            token_url="https://oauth2.googleapis.com/token",
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            client_auth="body",
            refresh="proactive",
            rotates_refresh_tokens=False,
            default_lifetime=3599,
            identity_url="https://openidconnect.googleapis.com/v1/userinfo",
            # Without these Google sends a refresh token only on the very first consent.
            authorize_params={"access_type": "offline", "prompt": "consent"},
            default_scopes=("openid", "email"),
        ),
    )
}

_ALIASES = {
    "graph": "microsoft",
    "microsoftgraph": "microsoft",
    "msgraph": "microsoft",
    "azure": "microsoft",
    "entra": "microsoft",
    "intuit": "quickbooks",
    "qbo": "quickbooks",
}


def profile_named(name: str) -> ProviderProfile:
    """The profile of this name (case and a few common aliases tolerated).

    Raises:
        CredentialError: no such profile; the message lists the known ones.
    """
    key = name.strip().lower().replace(" ", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise CredentialError(f"unknown provider profile {name!r}: use one of {known}")
    return PROFILES[key]
