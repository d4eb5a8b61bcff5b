"""Dynamic selects (``selectModel``): lists the platform's UI shows for a credential.

``tenants``: the organisations a credential may act for: Xero's ``/connections``, or the
API's ``tenantsPath`` (default ``/tenants``) answering ``[{tenantId, tenantName}]`` or
``[{id, name}]``. ``objects``: Salesforce's object types, from ``/services/data/{v}/sobjects``.
Each returns ``{value: label}``.
"""

from __future__ import annotations

from typing import Any

from runtime import Context, InvalidInput

XERO_CONNECTIONS = "https://api.xero.com/connections"
SALESFORCE_API_VERSION = "v60.0"


def tenants(ctx: Context, cfg: dict[str, Any]) -> dict[str, str]:
    provider = str(cfg.get("provider") or "").lower()
    path = XERO_CONNECTIONS if provider == "xero" else str(cfg.get("tenantsPath") or "/tenants")
    response = ctx.http.get(path)
    ctx.http.check(response)
    listed = response.json()
    if isinstance(listed, dict):
        listed = listed.get("items") or listed.get("tenants") or []
    if not isinstance(listed, list):
        raise InvalidInput(f"{path} did not answer with a list of tenants")
    choices: dict[str, str] = {}
    for item in listed:
        if isinstance(item, dict):
            value = item.get("tenantId") or item.get("id")
            label = item.get("tenantName") or item.get("name") or value
            if value:
                choices[str(value)] = str(label)
    return choices


def objects(ctx: Context, cfg: dict[str, Any]) -> dict[str, str]:
    version = str(cfg.get("apiVersion") or SALESFORCE_API_VERSION)
    response = ctx.http.get(f"/services/data/{version}/sobjects")
    ctx.http.check(response)
    return {
        str(item["name"]): str(item.get("label") or item["name"])
        for item in response.json().get("sobjects", [])
        if isinstance(item, dict) and item.get("name") and item.get("queryable", True)
    }
