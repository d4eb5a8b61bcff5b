"""Putting a credential on a request: done afresh for every attempt, sync or async alike."""

from __future__ import annotations

import base64

import requests

from runtime.auth.credentials import Credentials

DEFAULT_KEY_HEADER = "X-API-Key"
DEFAULT_KEY_PARAM = "api_key"


def auth_headers(credentials: Credentials) -> dict[str, str]:
    """The headers that authenticate a request: the profile's and the credential's static
    ones, and ``Authorization`` (or the API key's header)."""
    headers: dict[str, str] = {}
    profile = credentials.profile
    if profile is not None and profile.header_fields:
        headers.update(profile.static_headers(credentials.extras))
    headers.update(credentials.headers)
    kind = credentials.type
    if kind == "bearer":
        headers["Authorization"] = f"Bearer {credentials.token or credentials.access_token}"
    elif kind == "oauth2" and credentials.access_token:
        headers["Authorization"] = f"{credentials.token_type} {credentials.access_token}"
    elif kind == "basic":
        pair = f"{credentials.username}:{credentials.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif kind == "api_key" and credentials.key and credentials.key_location != "query":
        headers[credentials.key_name or DEFAULT_KEY_HEADER] = credentials.key
    return headers


def auth_query(credentials: Credentials) -> dict[str, str]:
    """The query parameters that authenticate a request (an API key sent in the query)."""
    if credentials.type == "api_key" and credentials.key and credentials.key_location == "query":
        return {credentials.key_name or DEFAULT_KEY_PARAM: credentials.key}
    return {}


def sign(request: requests.PreparedRequest, credentials: Credentials) -> None:
    """Add the credential's authentication and static headers to ``request``."""
    request.headers.update(auth_headers(credentials))
    query = auth_query(credentials)
    if query:
        request.prepare_url(request.url, query)
