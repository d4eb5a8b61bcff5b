"""``python -m runtime auth login NAME``: the first tokens, by the authorization-code flow.

It prints the provider's authorize URL, waits on a loopback redirect URI
(``http://127.0.0.1:PORT/callback``) for the code, checks ``state``, exchanges the code (with
the PKCE verifier unless the entry says ``skipPkce``) and writes the tokens into the
credentials file entry.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from runtime.auth.credentials import Credentials
from runtime.auth.errors import ClientMisconfigured
from runtime.auth.token_client import request_token
from runtime.devtools.credentials_file import CredentialsFile
from runtime.errors import ConfigError
from runtime.redact import SECRETS

CALLBACK_PATH = "/callback"


class LoginFailed(ClientMisconfigured):
    """The user or the provider ended the sign-in without a code."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    credentials: Credentials,
    *,
    redirect_uri: str,
    state: str,
    challenge: str | None,
    extra: Mapping[str, str],
) -> str:
    if not credentials.authorize_url:
        raise ConfigError(
            f"credential {credentials.name!r} has no authorizeUrl (or provider) to sign in with"
        )
    if not credentials.client_id:
        raise ConfigError(f"credential {credentials.name!r} has no clientId")
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": credentials.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    if credentials.scopes:
        params["scope"] = " ".join(credentials.scopes)
    if challenge is not None:
        params["code_challenge"] = challenge
        params["code_challenge_method"] = "S256"
    profile = credentials.profile
    if profile is not None:
        params.update(profile.authorize_params)
    params.update(extra)
    separator = "&" if "?" in credentials.authorize_url else "?"
    return credentials.authorize_url + separator + urlencode(params)


class _Callback:
    """Receives the provider's redirect on the loopback address."""

    def __init__(self, port: int) -> None:
        self.result: dict[str, str] | None = None
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the code in the URL is a secret."""

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                outer.result = dict(parse_qsl(parts.query))
                page = b"Signed in. You can close this window and return to the terminal.\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                outer.arrived.set()

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}{CALLBACK_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, timeout: float) -> dict[str, str]:
        try:
            if not self.arrived.wait(timeout):
                raise LoginFailed(f"no sign-in arrived within {timeout:g} s; run the command again")
            return self.result or {}
        finally:
            self.server.shutdown()
            self.server.server_close()


def login(
    store: CredentialsFile,
    name: str,
    *,
    port: int = 0,
    timeout: float = 300.0,
    out: TextIO,
) -> Credentials:
    """Run the authorization-code flow for the named entry and save its tokens.

    Raises:
        ConfigError: the entry lacks what the flow needs.
        LoginFailed: the provider answered with an error, a wrong state, or nothing in time.
        AuthError: the code exchange was refused.
    """
    entry = store.entry(name)
    credentials = Credentials.parse(entry, name=name, complete=False)
    if not credentials.token_url:
        raise ConfigError(f"credential {name!r} has no tokenUrl (or provider)")
    skip_pkce = bool(entry.get("skipPkce"))
    verifier, challenge = (None, None) if skip_pkce else pkce_pair()
    state = secrets.token_urlsafe(16)
    callback = _Callback(port)
    extra = {str(k): str(v) for k, v in (entry.get("authorizeParams") or {}).items()}
    url = authorize_url(
        credentials,
        redirect_uri=callback.redirect_uri,
        state=state,
        challenge=challenge,
        extra=extra,
    )
    out.write(f"Open this URL in a browser and sign in:\n\n  {url}\n\n")
    out.write(f"Waiting for the provider to redirect to {callback.redirect_uri} ...\n")
    out.flush()
    answer = callback.wait(timeout)
    if "error" in answer:
        raise LoginFailed(f"the provider refused the sign-in: {answer['error']}")
    if answer.get("state") != state:
        raise LoginFailed("the redirect's state does not match: sign-in aborted (possible CSRF)")
    code = answer.get("code")
    if not code:
        raise LoginFailed("the redirect carried no authorization code")
    SECRETS.add(code, verifier)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    with requests.Session() as http:
        response = request_token(credentials, http=http, form=form)
    signed_in = credentials.merged(response, now=datetime.now(UTC))
    store.save(name, signed_in.to_keys())
    expiry = signed_in.expires_at.isoformat() if signed_in.expires_at else "unknown"
    refresh = "with" if signed_in.refresh_token else "WITHOUT"
    out.write(
        f"Signed in: tokens for {name!r} saved to {store.path} ({refresh} a refresh token; "
        f"access token expires {expiry})\n"
    )
    return signed_in
