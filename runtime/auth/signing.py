"""Putting a credential on a prepared request: done afresh for every attempt."""

from __future__ import annotations

import base64

import requests

from runtime.auth.credentials import Credentials

DEFAULT_KEY_HEADER = "X-API-Key"
DEFAULT_KEY_PARAM = "api_key"


def sign(request: requests.PreparedRequest, credentials: Credentials) -> None:
    """Add the credential's authentication and static headers to ``request``."""
    headers = request.headers
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
    elif kind == "api_key" and credentials.key:
        if credentials.key_location == "query":
            name = credentials.key_name or DEFAULT_KEY_PARAM
            request.prepare_url(request.url, {name: credentials.key})
        else:
            headers[credentials.key_name or DEFAULT_KEY_HEADER] = credentials.key
