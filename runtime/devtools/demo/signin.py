"""Signing in to the demo provider without a browser: it consents at once, so the
authorization-code flow (with PKCE) can be walked by code, as a user's browser would."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import requests

from runtime.auth.credentials import Credentials
from runtime.auth.token_client import request_token
from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.login import authorize_url, pkce_pair

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"
REDIRECT_URI = "http://127.0.0.1:1/callback"  # never opened: the demo provider answers a 302


def sign_in(api_url: str, store: CredentialsFile, name: str = "demo") -> Credentials:
    """Create (or replace) the credentials entry ``name`` with freshly signed-in tokens."""
    entry = {
        "type": "oauth2",
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "authorizeUrl": f"{api_url}/oauth/authorize",
        "tokenUrl": f"{api_url}/oauth/token",
        "baseUrl": f"{api_url}/api",
        "scopes": ["records.read"],
    }
    credentials = Credentials.parse(entry, name=name, complete=False)
    verifier, challenge = pkce_pair()
    url = authorize_url(
        credentials, redirect_uri=REDIRECT_URI, state="demo", challenge=challenge, extra={}
    )
    with requests.Session() as http:
        redirect = http.get(url, allow_redirects=False, timeout=10)
        code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        answer = request_token(credentials, http=http, form=form)
    signed_in = credentials.merged(answer, now=datetime.now(UTC))
    store.path.parent.mkdir(parents=True, exist_ok=True)
    if not store.path.exists():
        store.path.write_text("{}\n")
    store.save(name, signed_in.to_keys())
    return signed_in
