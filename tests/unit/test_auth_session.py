from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
import requests
import responses
from responses import matchers

from runtime.auth import (
    AuthorizedSession,
    BodyNotReplayable,
    ClientMisconfigured,
    CredentialError,
    InsufficientScope,
    ReauthRequired,
    TokenEndpointUnavailable,
)
from runtime.auth.cache import CredentialCache
from runtime.auth.use import credential_use

API = "https://api.example.com"
TOKEN_URL = "https://login.example.com/token"


def oauth(**extra):
    return {
        "type": "oauth2",
        "name": "Shop",
        "clientId": "client-1",
        "clientSecret": "secret+with:odd/chars",
        "accessToken": "old-access",
        "refreshToken": "old-refresh",
        "tokenUrl": TOKEN_URL,
        **extra,
    }


@pytest.fixture
def cache():
    return CredentialCache()


@pytest.fixture
def saved():
    return []


USE_OPTIONS = ("key", "base_url", "lock", "reload", "refresh_credentials",
               "credentials_from_token_response", "token_timeout")  # fmt: skip


def session(cache, saved, creds=None, **kwargs):
    kwargs.setdefault("max_retry_wait", 5)
    shared = {k: kwargs.pop(k) for k in USE_OPTIONS if k in kwargs}
    use = credential_use(creds or oauth(), cache=cache, **shared)
    return AuthorizedSession(use, on_keys=saved.append, **kwargs)


def bearer_of(call) -> str:
    return call.request.headers.get("Authorization", "")


def token_calls(rsps) -> list:
    return [c for c in rsps.calls if c.request.url == TOKEN_URL]


def form_of(call) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_401_refreshes_once_saves_then_resends_with_the_new_token(cache, saved):
    order: list[str] = []
    responses.get(f"{API}/me", status=401)
    responses.post(
        TOKEN_URL,
        json={"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 3600},
    )
    responses.get(f"{API}/me", json={"id": 1})

    def save(keys):
        order.append(f"saved {keys['accessToken']}")

    http = AuthorizedSession(credential_use(oauth(), cache=cache), on_keys=save)
    response = http.get(f"{API}/me")
    assert response.json() == {"id": 1}
    first, refresh, resend = responses.calls
    assert bearer_of(first) == "Bearer old-access"
    assert bearer_of(resend) == "Bearer new-access"
    assert form_of(refresh)["grant_type"] == ["refresh_token"]
    assert form_of(refresh)["refresh_token"] == ["old-refresh"]
    assert order == ["saved new-access"]
    assert http.credentials.refresh_token == "new-refresh"


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_a_second_401_is_an_auth_error_never_a_loop(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.get(f"{API}/me", status=401)
    with pytest.raises(ReauthRequired) as caught:
        session(cache, saved).get(f"{API}/me")
    assert "re-authentication may be needed" in str(caught.value)
    assert len(responses.calls) == 3
    assert len(saved) == 1


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (400, {"WWW-Authenticate": 'Bearer realm="x", error="invalid_token"'}, {}),
        (401, {}, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]),
        (403, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}),
    ],
)
@responses.activate(registry=responses.registries.OrderedRegistry)
def test_provider_expired_signals_trigger_the_refresh(cache, saved, status, headers, body):
    responses.get(f"{API}/x", status=status, headers=headers, json=body)
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.get(f"{API}/x", json={"ok": True})
    assert session(cache, saved).get(f"{API}/x").json() == {"ok": True}
    assert len(saved) == 1


@responses.activate
def test_a_plain_403_is_not_a_refresh_and_check_names_the_scope(cache, saved):
    responses.get(f"{API}/admin", status=403, json={"error": "forbidden"})
    http = session(cache, saved, oauth(scopes=["read"]))
    response = http.get(f"{API}/admin")
    assert response.status_code == 403
    assert token_calls(responses) == []
    with pytest.raises(InsufficientScope) as caught:
        http.check(response)
    assert "lacks a permission (scopes: read)" in str(caught.value)


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_if_saving_fails_the_request_fails_and_the_old_keys_stay(cache):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, json={"access_token": "new-access", "refresh_token": "new-refresh"})
    responses.get(f"{API}/me", status=401)  # the next request, still on the old token
    responses.get(f"{API}/me", json={"id": 1})

    def broken(keys):
        raise OSError("the accounts API is down")

    http = AuthorizedSession(credential_use(oauth(), cache=cache), on_keys=broken)
    with pytest.raises(OSError, match="accounts API is down"):
        http.get(f"{API}/me")
    assert http.credentials.access_token == "old-access"
    assert len(responses.calls) == 2  # never resent with the unsaved token

    # The rotated keys were kept aside: they are saved before any new refresh.
    saved: list[dict] = []
    retry = AuthorizedSession(credential_use(oauth(), cache=cache), on_keys=saved.append)
    assert retry.get(f"{API}/me").json() == {"id": 1}
    assert len(token_calls(responses)) == 1
    assert saved[0]["refreshToken"] == "new-refresh"


@responses.activate
def test_invalid_grant_means_reconnect_and_fails_fast_afterwards(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.post(
        TOKEN_URL,
        status=400,
        json={
            "error": "invalid_grant",
            "error_description": "AADSTS70008: The refresh token has expired due to inactivity.",
        },
    )
    http = session(cache, saved)
    with pytest.raises(ReauthRequired) as caught:
        http.get(f"{API}/me")
    message = str(caught.value)
    assert "invalid_grant, AADSTS70008" in message
    assert "must reconnect" in message
    with pytest.raises(ReauthRequired):
        session(cache, saved).get(f"{API}/me")
    assert len(token_calls(responses)) == 1


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client"])
@responses.activate
def test_invalid_client_says_check_the_client(cache, saved, error):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, status=401, json={"error": error})
    with pytest.raises(ClientMisconfigured) as caught:
        session(cache, saved).get(f"{API}/me")
    assert "check the client id and secret" in str(caught.value)


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_token_endpoint_5xx_and_429_are_retried_honouring_retry_after(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, status=503, headers={"Retry-After": "0"})
    responses.post(TOKEN_URL, status=429, headers={"Retry-After": "0"})
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.get(f"{API}/me", json={"ok": 1})
    assert session(cache, saved).get(f"{API}/me").json() == {"ok": 1}
    assert len(token_calls(responses)) == 3


@responses.activate
def test_token_endpoint_that_stays_down_is_transient_not_reauth(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, status=502, headers={"Retry-After": "0"})
    with pytest.raises(TokenEndpointUnavailable) as caught:
        session(cache, saved).get(f"{API}/me")
    assert "answered 502" in str(caught.value)
    assert "try again later" in str(caught.value)
    assert len(token_calls(responses)) == 4  # first try + 3 retries


@responses.activate
def test_a_retry_after_beyond_the_budget_is_not_waited_for(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(TokenEndpointUnavailable):
        session(cache, saved).get(f"{API}/me")
    assert len(token_calls(responses)) == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"body": "<html>Gateway</html>", "content_type": "text/html"}, "not a JSON object"),
        ({"json": {"token": "wrong-field"}}, "without an access_token"),
        ({"json": ["a", "list"]}, "not a JSON object"),
    ],
)
@responses.activate
def test_a_token_endpoint_answering_garbage_is_a_clear_error(cache, saved, kwargs, expected):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, status=200, **kwargs)
    with pytest.raises(TokenEndpointUnavailable) as caught:
        session(cache, saved).get(f"{API}/me")
    assert expected in str(caught.value)
    assert saved == []


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_api_429_is_retried_and_each_attempt_is_signed_afresh(cache, saved):
    responses.get(f"{API}/items", status=429, headers={"Retry-After": "0"})
    responses.get(f"{API}/items", status=401)
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.get(f"{API}/items", status=503, headers={"Retry-After": "0"})
    responses.get(f"{API}/items", json=[1])
    assert session(cache, saved).get(f"{API}/items").json() == [1]
    api_calls = [c for c in responses.calls if c.request.url.startswith(API)]
    assert [bearer_of(c) for c in api_calls] == [
        "Bearer old-access",
        "Bearer old-access",
        "Bearer new-access",
        "Bearer new-access",
    ]


@responses.activate
def test_5xx_is_retried_for_get_but_not_for_post(cache, saved):
    responses.get(f"{API}/items", status=500)
    responses.post(f"{API}/items", status=500)
    http = session(cache, saved, retries=2)
    assert http.get(f"{API}/items").status_code == 500
    assert http.post(f"{API}/items", json={"a": 1}).status_code == 500
    assert [c.request.method for c in responses.calls] == ["GET", "GET", "GET", "POST"]


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_request_bodies_are_replayed_on_the_resend(cache, saved):
    responses.post(f"{API}/items", status=401)
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.post(f"{API}/items", status=201)
    session(cache, saved).post(f"{API}/items", json={"name": "x"}, params={"q": "1"})
    first, _, resend = responses.calls
    assert json.loads(resend.request.body) == {"name": "x"} == json.loads(first.request.body)
    assert resend.request.url == first.request.url


@responses.activate
def test_a_one_shot_stream_is_refused_for_the_resend_not_sent_empty(cache, saved):
    responses.post(f"{API}/upload", status=401)
    with pytest.raises(BodyNotReplayable) as caught:
        session(cache, saved).post(f"{API}/upload", data=iter([b"pay", b"load"]))
    assert "one-shot stream" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_a_seekable_file_is_sent_again_from_where_it_started(cache, saved):
    seen: list[bytes] = []

    def upload(request):
        body = request.body
        seen.append(body if isinstance(body, bytes) else body.read())
        return (401, {}, "") if len(seen) == 1 else (201, {}, "")

    responses.add_callback(responses.POST, f"{API}/upload", callback=upload)
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.add_callback(responses.POST, f"{API}/upload", callback=upload)
    spool = io.BytesIO(b"header|payload")
    spool.seek(len(b"header|"))
    assert session(cache, saved).post(f"{API}/upload", data=spool).status_code == 201
    assert seen == [b"payload", b"payload"]


@responses.activate
def test_proactive_refreshes_before_sending_when_expiry_is_near(cache, saved):
    responses.post(TOKEN_URL, json={"access_token": "new-access", "expires_in": 600})
    responses.get(f"{API}/me", json={})
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    http = session(cache, saved, oauth(refresh="proactive", expiresAt=soon, expiresIn=600))
    http.get(f"{API}/me")
    assert [c.request.url for c in responses.calls] == [TOKEN_URL, f"{API}/me"]
    assert bearer_of(responses.calls[1]) == "Bearer new-access"
    # A token with plenty of time left is not refreshed.
    http.get(f"{API}/me")
    assert len(token_calls(responses)) == 1


@responses.activate
def test_on_401_policy_still_skips_a_token_already_past_its_expiry(cache, saved):
    responses.post(TOKEN_URL, json={"access_token": "new-access"})
    responses.get(f"{API}/me", json={})
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    session(cache, saved, oauth(expiresAt=past)).get(f"{API}/me")
    assert [c.request.url for c in responses.calls] == [TOKEN_URL, f"{API}/me"]
    future = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    session(CredentialCache(), saved, oauth(expiresAt=future)).get(f"{API}/me")
    assert len(token_calls(responses)) == 1


@responses.activate
def test_always_refreshes_before_the_first_request_of_each_message(cache, saved):
    responses.post(TOKEN_URL, json={"access_token": "fresh", "refresh_token": "rotated"})
    responses.get(f"{API}/me", json={})
    message_one = session(cache, saved, oauth(refresh="always"))
    message_one.get(f"{API}/me")
    message_one.get(f"{API}/me")
    assert len(token_calls(responses)) == 1
    message_two = session(cache, saved, oauth(refresh="always"))
    message_two.get(f"{API}/me")
    assert len(token_calls(responses)) == 2
    assert form_of(token_calls(responses)[1])["refresh_token"] == ["rotated"]


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_always_still_refreshes_on_a_later_401(cache, saved):
    responses.post(TOKEN_URL, json={"access_token": "fresh-1"})
    responses.get(f"{API}/me", json={})
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, json={"access_token": "fresh-2"})
    responses.get(f"{API}/me", json={"second": True})
    http = session(cache, saved, oauth(provider="microsoft", tokenUrl=TOKEN_URL))
    http.get(f"{API}/me")
    assert http.get(f"{API}/me").json() == {"second": True}
    assert len(saved) == 2


@pytest.mark.parametrize(
    ("location", "basic", "in_body"),
    [("headers", True, False), ("body", False, True), ("both", True, True)],
)
@responses.activate
def test_client_authentication_goes_where_the_provider_wants_it(
    cache, saved, location, basic, in_body
):
    responses.get(f"{API}/me", status=401)
    responses.post(TOKEN_URL, json={"access_token": "new"})
    with pytest.raises(ReauthRequired):
        session(cache, saved, oauth(clientAuthLocation=location)).get(f"{API}/me")
    call = token_calls(responses)[0]
    header = call.request.headers.get("Authorization")
    if basic:
        # RFC 6749 2.3.1: each part form-encoded before base64.
        decoded = base64.b64decode(header.split()[1]).decode()
        assert decoded == "client-1:secret%2Bwith%3Aodd%2Fchars"
    else:
        assert header is None
    form = form_of(call)
    assert ("client_secret" in form) is in_body
    if in_body:
        assert form["client_secret"] == ["secret+with:odd/chars"]


@responses.activate
def test_client_credentials_grant_needs_no_persistence(cache):
    responses.post(
        TOKEN_URL,
        json={"access_token": "cc-token", "expires_in": 60},
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "scope": "a b",
                    "client_id": "c",
                    "client_secret": "s",
                }
            )
        ],
    )
    responses.get(f"{API}/me", json={})
    http = AuthorizedSession(
        credential_use(
            {
                "type": "oauth2",
                "clientId": "c",
                "clientSecret": "s",
                "tokenUrl": TOKEN_URL,
                "scopes": "a b",
                "clientAuthLocation": "body",
            },
            cache=cache,
        )
    )
    http.get(f"{API}/me")
    assert bearer_of(responses.calls[1]) == "Bearer cc-token"


@responses.activate
def test_a_refresh_token_with_nowhere_to_save_is_an_error_not_a_silent_drop(cache):
    responses.get(f"{API}/me", status=401)
    http = AuthorizedSession(credential_use(oauth(), cache=cache))
    with pytest.raises(CredentialError) as caught:
        http.get(f"{API}/me")
    assert "nowhere to save the new tokens" in str(caught.value)
    assert token_calls(responses) == []


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_custom_refresh_and_response_hooks(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.get(f"{API}/me", json={})
    seen = []

    def refresh(creds):
        seen.append(creds.refresh_token)
        return {"data": {"token": "custom-token", "ttl": "90"}}

    def unwrap(response):
        return {"access_token": response["data"]["token"], "expires_in": response["data"]["ttl"]}

    http = session(
        cache, saved, refresh_credentials=refresh, credentials_from_token_response=unwrap
    )
    http.get(f"{API}/me")
    assert seen == ["old-refresh"]
    assert bearer_of(responses.calls[1]) == "Bearer custom-token"
    assert http.credentials.expires_in == 90


@pytest.mark.parametrize(
    ("creds", "header", "value", "url_part"),
    [
        ({"type": "bearer", "token": "tok-123"}, "Authorization", "Bearer tok-123", None),
        (
            {"type": "basic", "username": "u", "password": "p"},
            "Authorization",
            "Basic " + base64.b64encode(b"u:p").decode(),
            None,
        ),
        ({"type": "api_key", "key": "k-123", "keyName": "X-Shop-Key"}, "X-Shop-Key", "k-123", None),
        (
            {"type": "api_key", "key": "k-123", "keyLocation": "query", "keyName": "apikey"},
            None,
            None,
            "apikey=k-123",
        ),
        ({"type": "none"}, "Authorization", None, None),
    ],
)
@responses.activate
def test_every_credential_type_signs_requests(cache, creds, header, value, url_part):
    responses.get(f"{API}/me", json={})
    AuthorizedSession(credential_use(creds, cache=cache)).get(f"{API}/me", params={"a": "1"})
    request = responses.calls[0].request
    if header:
        assert request.headers.get(header) == value
    if url_part:
        assert url_part in request.url
        assert "a=1" in request.url


@responses.activate
def test_static_headers_and_profile_tenant_header(cache, saved):
    responses.get(f"{API}/Invoices", json={})
    creds = oauth(
        provider="xero",
        tenantId="tenant-42",
        headers={"X-Extra": "1"},
        expiresAt=(datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    )
    session(cache, saved, creds).get(f"{API}/Invoices")
    request = responses.calls[0].request
    assert request.headers["Xero-Tenant-Id"] == "tenant-42"
    assert request.headers["X-Extra"] == "1"


@responses.activate
def test_relative_urls_use_the_base_url(cache, saved):
    responses.get("https://na1.my.salesforce.com/services/data/v60.0/sobjects", json={})
    creds = oauth(provider="salesforce", instance_url="https://na1.my.salesforce.com")
    session(cache, saved, creds).get("/services/data/v60.0/sobjects")
    assert responses.calls[0].request.url.startswith("https://na1.my.salesforce.com/services")
    with pytest.raises(CredentialError, match="needs a base URL"):
        AuthorizedSession(credential_use({"type": "none"}, cache=cache)).get("/relative")


@responses.activate
def test_connection_errors_of_idempotent_requests_are_retried(cache, saved, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("runtime.auth.session.time.sleep", waits.append)
    refused = requests.exceptions.ConnectionError("connection refused")
    responses.get(f"{API}/flaky", body=refused)
    responses.post(f"{API}/flaky", body=refused)
    http = session(cache, saved, {"type": "none"}, retries=2)
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{API}/flaky")
    assert len(responses.calls) == 3  # the first try and both retries
    assert len(waits) == 2 and all(w > 0 for w in waits)
    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(f"{API}/flaky", json={})
    assert len(responses.calls) == 4  # a POST that may have arrived is not sent again


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_no_token_secret_or_code_appears_in_exception_messages(cache, saved):
    responses.get(f"{API}/me", status=401)
    responses.post(
        TOKEN_URL,
        status=400,
        json={
            "error": "invalid_grant",
            "error_description": "refresh token old-refresh for client-1 secret+with:odd/chars bad",
        },
    )
    with pytest.raises(ReauthRequired) as caught:
        session(cache, saved).get(f"{API}/me")
    text = str(caught.value) + repr(caught.value)
    for secret in ("old-refresh", "old-access", "secret+with:odd/chars"):
        assert secret not in text
