from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtime.auth import CredentialError, Credentials, profile_named
from runtime.auth.shapes import parse_instant

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def oauth(**extra):
    return {
        "type": "oauth2",
        "name": "Xero",
        "clientId": "cid",
        "clientSecret": "csecret",
        "accessToken": "at-1",
        "refreshToken": "rt-1",
        "tokenUrl": "https://login.example.com/token",
        **extra,
    }


def test_camel_case_file_shape():
    creds = Credentials.parse(oauth(scopes=["a", "b"], expiresAt="2024-01-20T10:30:00Z"))
    assert creds.type == "oauth2"
    assert creds.client_id == "cid"
    assert creds.scopes == ["a", "b"]
    assert creds.expires_at == datetime(2024, 1, 20, 10, 30, tzinfo=UTC)
    assert creds.refresh_policy == "on_401"
    assert creds.client_auth == "both"


def test_snake_case_token_response_shape():
    before = datetime.now(UTC)
    creds = Credentials.parse(
        {
            "access_token": "at",
            "refresh_token": "rt",
            "expires_in": "3600",
            "token_type": "BEARER",
            "token_url": "https://t",
            "scope": "read write",
        }
    )
    after = datetime.now(UTC)
    assert creds.type == "oauth2"
    assert creds.token_type == "Bearer"
    assert creds.scopes == ["read", "write"]
    assert creds.expires_in == 3600
    assert creds.expires_at is not None
    # Expiry is counted from when the answer was read: between the clock readings around it.
    lifetime = timedelta(seconds=3600)
    assert before + lifetime <= creds.expires_at <= after + lifetime


def test_tokens_nested_under_an_oauth_field_as_the_platform_stores_them():
    cfg = {
        "clientId": "cid",
        "tokenUrl": "https://t",
        "oauth": {"access_token": "at", "refresh_token": "rt"},
    }
    creds = Credentials.parse(cfg)
    assert (creds.type, creds.access_token, creds.refresh_token) == ("oauth2", "at", "rt")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "none"}, "none"),
        ({}, "none"),
        ({"type": "bearer", "token": "t0k3n"}, "bearer"),
        ({"type": "token", "token": "t0k3n"}, "bearer"),
        ({"type": "basic", "username": "u", "password": "p"}, "basic"),
        ({"type": "apiKey", "key": "k3y"}, "api_key"),
        ({"type": "api-key", "key": "k3y", "keyLocation": "query", "keyName": "token"}, "api_key"),
        (
            {"type": "OAuth2", "clientId": "c", "clientSecret": "s", "tokenUrl": "https://t"},
            "oauth2",
        ),
    ],
)
def test_every_type_parses(data, expected):
    assert Credentials.parse(data).type == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"type": "oauth2", "name": "Xero", "accessToken": "at"},
            "oauth2 credential 'Xero' needs refreshToken and tokenUrl to refresh (or set "
            "noRefreshToken: true",
        ),
        (
            {"type": "oauth2", "name": "Xero", "accessToken": "at", "refreshToken": "rt"},
            "oauth2 credential 'Xero' needs tokenUrl to refresh",
        ),
        (
            {
                "type": "oauth2",
                "grantType": "client_credentials",
                "tokenUrl": "https://t",
                "clientId": "c",
            },
            "needs clientSecret to refresh",
        ),
        ({"type": "bearer"}, "bearer credential needs token"),
        ({"type": "basic", "password": "p"}, "basic credential needs username"),
        ({"type": "api_key", "name": "Shop"}, "api_key credential 'Shop' needs key"),
        ({"type": "kerberos"}, "unknown type 'kerberos': use one of none, bearer, basic"),
        ({"type": "oauth2", "noRefreshToken": True}, "needs accessToken"),
        ({"type": "api_key", "key": "k", "keyLocation": "cookie"}, "keyLocation"),
        ({"type": "oauth2", "provider": "dropbox"}, "unknown provider profile 'dropbox'"),
        ("not a dict", "must be a JSON object"),
    ],
)
def test_wrong_or_incomplete_credentials_say_what_is_missing(data, message):
    with pytest.raises(CredentialError) as caught:
        Credentials.parse(data)
    assert message in str(caught.value)


def test_no_refresh_token_means_a_static_access_token():
    creds = Credentials.parse({"type": "oauth2", "accessToken": "at", "noRefreshToken": True})
    assert not creds.can_refresh


def test_client_credentials_is_chosen_when_there_is_a_secret_and_no_refresh_token():
    creds = Credentials.parse(
        {"type": "oauth2", "clientId": "c", "clientSecret": "s", "tokenUrl": "https://t"}
    )
    assert creds.effective_grant == "client_credentials"
    assert creds.can_refresh


def test_merge_keeps_the_old_refresh_token_when_the_response_has_none():
    creds = Credentials.parse(oauth())
    fresh = creds.merged({"access_token": "at-2", "expires_in": 60}, now=NOW)
    assert fresh.access_token == "at-2"
    assert fresh.refresh_token == "rt-1"
    assert fresh.expires_at == NOW + timedelta(seconds=60)


def test_merge_takes_a_rotated_refresh_token_and_keeps_extra_fields():
    creds = Credentials.parse(oauth())
    fresh = creds.merged(
        {
            "access_token": "at-2",
            "refresh_token": "rt-2",
            "instance_url": "https://na1",
            "id": "https://id/1",
            "token_type": "bearer",
        },
        now=NOW,
    )
    assert fresh.refresh_token == "rt-2"
    assert fresh.extras["instance_url"] == "https://na1"
    assert fresh.extras["id"] == "https://id/1"
    assert fresh.client_secret == "csecret"


@pytest.mark.parametrize("expires_in", [120, 120.0, "120", " 120 "])
def test_expires_in_as_int_float_or_string(expires_in):
    fresh = Credentials.parse(oauth()).merged(
        {"access_token": "a", "expires_in": expires_in}, now=NOW
    )
    assert fresh.expires_at == NOW + timedelta(seconds=120)


def test_missing_expires_in_uses_the_default_lifetime():
    plain = Credentials.parse(oauth()).merged({"access_token": "a"}, now=NOW)
    assert plain.expires_at == NOW + timedelta(hours=1)
    salesforce = Credentials.parse(oauth(provider="salesforce")).merged(
        {"access_token": "a", "instance_url": "https://na1.my.salesforce.com"}, now=NOW
    )
    assert salesforce.expires_at == NOW + timedelta(hours=2)
    garbage = Credentials.parse(oauth()).merged(
        {"access_token": "a", "expires_in": "soon"}, now=NOW
    )
    assert garbage.expires_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize("token_type", ["bearer", "Bearer", "BEARER", None])
def test_token_type_in_any_case(token_type):
    fresh = Credentials.parse(oauth()).merged(
        {"access_token": "a", "token_type": token_type}, now=NOW
    )
    assert fresh.token_type == "Bearer"


def test_keys_are_written_back_in_the_shape_they_came_in():
    camel = Credentials.parse(oauth(tenantId="t-1")).merged(
        {"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 60}, now=NOW
    )
    keys = camel.to_keys()
    assert keys["accessToken"] == "at-2"
    assert keys["refreshToken"] == "rt-2"
    assert keys["expiresAt"] == "2026-05-01T12:01:00Z"
    assert keys["tenantId"] == "t-1"
    assert keys["clientSecret"] == "csecret"
    assert "access_token" not in keys
    assert Credentials.parse(keys).access_token == "at-2"

    nested = Credentials.parse(
        {
            "clientId": "c",
            "tokenUrl": "https://t",
            "oauth": {"access_token": "at", "refresh_token": "rt", "extra_thing": 1},
        }
    )
    keys = nested.merged({"access_token": "at-2", "expires_in": 10}, now=NOW).to_keys()
    assert keys["oauth"]["access_token"] == "at-2"
    assert keys["oauth"]["refresh_token"] == "rt"
    assert keys["oauth"]["extra_thing"] == 1
    assert keys["clientId"] == "c"
    assert "access_token" not in keys

    snake = Credentials.parse(
        {"access_token": "at", "refresh_token": "rt", "token_url": "https://t"}
    )
    keys = snake.merged({"access_token": "at-2"}, now=NOW).to_keys()
    assert keys["access_token"] == "at-2"
    assert keys["refresh_token"] == "rt"


def test_provider_profiles_fill_in_what_the_credential_leaves_out():
    graph = Credentials.parse(oauth(provider="Microsoft Graph", tokenUrl=None, tenant="contoso"))
    assert graph.token_url == "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
    assert graph.refresh_policy == "always"
    assert graph.client_auth == "body"
    xero = Credentials.parse(oauth(provider="xero", tokenUrl=None))
    assert xero.token_url == "https://identity.xero.com/connect/token"
    assert xero.client_auth == "headers"
    own = Credentials.parse(oauth(provider="xero", refresh="always", clientAuthLocation="body"))
    assert own.refresh_policy == "always"
    assert own.client_auth == "body"
    assert own.token_url == "https://login.example.com/token"


def test_every_profile_states_its_token_url_and_client_auth():
    for name in ("microsoft", "salesforce", "xero", "quickbooks", "google"):
        profile = profile_named(name)
        assert profile.token_url.startswith("https://")
        assert profile.client_auth in ("headers", "body", "both")
    assert profile_named("google").authorize_params["access_type"] == "offline"
    assert profile_named("QBO").name == "quickbooks"


def test_instants_in_every_format():
    assert parse_instant("2024-01-20T10:30:00Z") == datetime(2024, 1, 20, 10, 30, tzinfo=UTC)
    assert parse_instant(1700000000) == datetime.fromtimestamp(1700000000, UTC)
    assert parse_instant("1700000000000") == datetime.fromtimestamp(1700000000, UTC)
    assert parse_instant("2024-01-20T10:30:00") == datetime(2024, 1, 20, 10, 30, tzinfo=UTC)
    assert parse_instant("yesterday") is None


def test_a_token_answer_that_brings_a_refresh_token_makes_the_credential_refreshable():
    # As a provider's first answer can leave it (parse would refuse it from a user).
    creds = Credentials.model_validate(oauth(refreshToken=None))
    assert not creds.can_refresh  # asked first: the answer is remembered for this credential
    fresh = creds.merged({"access_token": "at-2", "refresh_token": "rt-2"}, now=NOW)
    assert fresh.can_refresh
    assert not creds.can_refresh
