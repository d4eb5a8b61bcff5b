"""Calling a token endpoint: the grant request, client authentication, and what answers mean.

Transient failures (429, 5xx, network) are retried within a budget, honouring
``Retry-After``. A request whose outcome is unknown (sent, then the connection broke) is
not sent again for providers that rotate refresh tokens without a grace period: the old
refresh token may already be dead, and replaying it could revoke the whole token family.

Answers are read within bounds: more than ``ANSWER_LIMIT`` bytes, an answer that does not
finish in time, HTML, or JSON without an ``access_token`` is a ``TokenEndpointUnavailable``
naming the endpoint's host, never a hang or a crash. ``TOKEN_TIMEOUT`` bounds the whole
call, retries and a trickling answer included: a refresh holds the credential's locks, and
every other replica sharing the credential waits for it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlsplit

import requests

from runtime import bounded
from runtime.auth.credentials import Credentials
from runtime.auth.errors import (
    ClientMisconfigured,
    ReauthRequired,
    TokenEndpointUnavailable,
)
from runtime.auth.retry import RetryBudget, retry_after_seconds
from runtime.deadlines import deadline
from runtime.log import get_logger
from runtime.network import describe_failure
from runtime.redact import SECRETS

TOKEN_TIMEOUT = 30.0
ANSWER_LIMIT = 1024 * 1024

_REAUTH_ERRORS = frozenset(
    {"invalid_grant", "invalid_token", "interaction_required", "consent_required", "login_required"}
)
_CLIENT_ERRORS = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "invalid_scope",
        "unsupported_grant_type",
        "invalid_request",
    }
)
_PROVIDER_CODE = re.compile(r"\b(AADSTS\d{5,})\b")

_log = get_logger(__name__)


def grant_form(credentials: Credentials) -> dict[str, str]:
    """The form fields of the refresh or client-credentials request (client auth aside)."""
    form: dict[str, str]
    if credentials.effective_grant == "client_credentials":
        form = {"grant_type": "client_credentials"}
    else:
        form = {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token or ""}
    if credentials.scopes:
        form["scope"] = " ".join(credentials.scopes)
    form.update(credentials.extra)
    return form


def client_auth(credentials: Credentials, form: dict[str, str]) -> dict[str, str]:
    """Put the client's id and secret where the provider wants them; returns the headers."""
    headers: dict[str, str] = {}
    location = credentials.client_auth
    client_id = credentials.client_id
    secret = credentials.client_secret
    if client_id is None:
        return headers
    if secret and location in ("headers", "both"):
        # RFC 6749 §2.3.1: form-encode each part before joining (secrets with '+', ':').
        pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    if location in ("body", "both") or not secret:
        form["client_id"] = client_id
        if secret:
            form["client_secret"] = secret
    return headers


def request_token(
    credentials: Credentials,
    *,
    http: requests.Session,
    form: Mapping[str, str] | None = None,
    budget: RetryBudget | None = None,
    timeout: float = TOKEN_TIMEOUT,
) -> dict[str, Any]:
    """POST a grant to the token endpoint and return its JSON answer.

    Args:
        credentials: the credential to refresh (or to exchange a code for, with ``form``).
        http: the session to send with (not an authorised one).
        form: the grant's fields; by default the refresh or client-credentials grant.
        budget: transient retries allowed.
        timeout: seconds for the whole call (every attempt, and reading the answers); send
            with a session mounted with ``runtime.deadlines.adapter`` for it to bound the
            headers too.

    Raises:
        ReauthRequired: ``invalid_grant`` and kin: the user must sign in again.
        ClientMisconfigured: the client id, secret or scopes were refused.
        TokenEndpointUnavailable: 429, 5xx, network errors or a garbled answer, past retries.
    """
    if not credentials.token_url:
        raise ClientMisconfigured(f"{_name(credentials)} has no tokenUrl to refresh with")
    fields = dict(form) if form is not None else grant_form(credentials)
    headers = {"Accept": "application/json", **client_auth(credentials, fields)}
    SECRETS.add_from(fields)  # the refresh token, client secret, PKCE verifier
    budget = budget or RetryBudget(max_wait=timeout)
    host = urlsplit(credentials.token_url).netloc

    def too_slow() -> TokenEndpointUnavailable:
        return TokenEndpointUnavailable(
            f"the token endpoint at {host} did not finish answering within {timeout:g} s for "
            f"{_name(credentials)} (too slow); nothing was refreshed, try again later"
        )

    with deadline(timeout, too_slow=too_slow):
        return _exchange(
            credentials, http, fields=fields, headers=headers, budget=budget, timeout=timeout
        )


def _exchange(
    credentials: Credentials,
    http: requests.Session,
    *,
    fields: dict[str, str],
    headers: dict[str, str],
    budget: RetryBudget,
    timeout: float,
) -> dict[str, Any]:
    url = credentials.token_url or ""
    host = urlsplit(url).netloc
    while True:
        try:
            response = http.post(url, data=fields, headers=headers, timeout=timeout, stream=True)
        except requests.exceptions.RequestException as exc:
            if _may_resend(credentials, exc) and budget.wait(None):
                continue
            raise TokenEndpointUnavailable(
                f"could not reach the token endpoint at {host} for {_name(credentials)} "
                f"({describe_failure(exc)}); try again later"
            ) from None
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            if budget.wait(retry_after_seconds(response.headers)):
                continue
            raise TokenEndpointUnavailable(
                f"the token endpoint at {host} answered {response.status_code} for "
                f"{_name(credentials)} after retrying; try again later"
            )
        what = f"the answer of the token endpoint at {host}"
        try:
            raw = bounded.read(response, what=what, limit=ANSWER_LIMIT, seconds=timeout)
        except bounded.OutOfBounds as exc:
            raise TokenEndpointUnavailable(
                f"{exc}, refreshing {_name(credentials)}; check tokenUrl, or try again later"
            ) from None
        return _read_answer(credentials, response, raw, host)


def _may_resend(credentials: Credentials, error: requests.exceptions.RequestException) -> bool:
    if isinstance(error, requests.exceptions.ConnectTimeout) or _refused(error):
        return True  # nothing reached the server
    if credentials.effective_grant == "client_credentials":
        return True
    profile = credentials.profile
    return profile is None or not profile.rotates_refresh_tokens or profile.reuse_grace_seconds > 0


def _refused(error: requests.exceptions.RequestException) -> bool:
    return isinstance(error, requests.exceptions.ConnectionError) and (
        "NewConnectionError" in repr(error.args) or "Connection refused" in str(error)
    )


def _read_answer(
    credentials: Credentials, response: requests.Response, raw: bytes, host: str
) -> dict[str, Any]:
    body = _json_object(raw, host)
    if response.ok:
        if body is None:
            kind = response.headers.get("Content-Type", "no content type")
            raise TokenEndpointUnavailable(
                f"the token endpoint at {host} answered {response.status_code} with something "
                f"that is not a JSON object ({kind}) for {_name(credentials)}; check tokenUrl"
            )
        if not body.get("access_token"):
            raise TokenEndpointUnavailable(
                f"the token endpoint at {host} answered without an access_token for "
                f"{_name(credentials)}; check tokenUrl and the grant type"
            )
        SECRETS.add(body.get("access_token"), body.get("refresh_token"), body.get("id_token"))
        return body
    error = str((body or {}).get("error") or "")
    detail = _detail(body or {})
    if error in _REAUTH_ERRORS:
        raise ReauthRequired(
            f"{_name(credentials)}: the provider refused the refresh token ({error}{detail}); "
            "the user must reconnect (sign in again) to this credential"
        )
    if error in _CLIENT_ERRORS or response.status_code == 401:
        raise ClientMisconfigured(
            f"{_name(credentials)}: the token endpoint at {host} refused the client "
            f"({error or response.status_code}{detail}); check the client id and secret, "
            "the scopes and where client authentication is sent (clientAuthLocation)"
        )
    raise TokenEndpointUnavailable(
        f"the token endpoint at {host} answered {response.status_code}"
        f"{' (' + error + ')' if error else ''} for {_name(credentials)}; check tokenUrl"
    )


def _json_object(raw: bytes, host: str) -> dict[str, Any] | None:
    try:
        body = bounded.loads(raw, what=f"the answer of the token endpoint at {host}")
    except bounded.OutOfBounds:
        return None
    return body if isinstance(body, dict) else None


def _detail(body: Mapping[str, Any]) -> str:
    """A short provider code (Entra's AADSTS…) rather than free text that may echo input."""
    match = _PROVIDER_CODE.search(str(body.get("error_description") or ""))
    return f", {match.group(1)}" if match else ""


def _name(credentials: Credentials) -> str:
    return f"credential {credentials.name!r}" if credentials.name else "the credential"
