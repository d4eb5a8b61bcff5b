from __future__ import annotations

import io
import json
import logging

import pytest
import requests
import responses as responses_lib

from runtime import log
from runtime.redact import REDACTED, SECRETS, SecretRegistry, is_secret_name, redact
from runtime.step.events import error_payload
from tests.helpers import SAMPLE, run_cli

KEY = "sk_live_9f8e7d6c5b4a"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_step_logging_its_secret_at_every_level_never_shows_it(tmp_path, fmt):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"apiKey": KEY}))
    result = run_cli(
        "exec",
        "logSecrets",
        "--cfg",
        str(cfg),
        "--component",
        str(SAMPLE),
        "--log-format",
        fmt,
        env={"LOG_LEVEL": "debug"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1  # the step raises with the key in its message
    assert KEY not in output
    # Each path really logged something: otherwise the test would prove nothing.
    for marker in (
        "debugging",
        "using key",
        "warned",
        "failed",
        "with traceback",
        "library saw",
        "was rejected",
    ):
        assert marker in output, marker
    assert output.count(REDACTED) >= 7


def capture(fmt: str, level: str = "debug") -> io.StringIO:
    stream = io.StringIO()
    log.configure(fmt=fmt, level=level, stream=stream)
    return stream


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_registered_values_are_cut_from_every_logging_path(fmt):
    secret = "refresh-token-abcdef123456"
    SECRETS.add(secret)
    stream = capture(fmt)
    logger = log.get_logger("runtime.test")
    logger.debug("plain mention " + secret)
    logger.info("field", detail=f"x{secret}y", nested={"list": [secret]})
    try:
        raise ValueError(f"token {secret} refused")
    except ValueError:
        logger.exception("caught")
    logging.getLogger("pika.connection").error("stdlib %s", secret)
    logging.getLogger("urllib3").warning("url https://h/?key=%s", secret)
    text = stream.getvalue()
    assert secret not in text
    assert text.count(REDACTED) >= 5
    assert "caught" in text and "stdlib" in text and "url https://h/?key=" in text


def test_values_under_secret_key_names_are_removed_even_if_unregistered():
    stream = capture("json")
    log.get_logger("t").info(
        "keys",
        password="hunter2",
        client_secret="cs-1",
        Authorization="Basic abc",
        refresh_token="rt",
        keys={"a": 1},
        tokenUrl="https://login/token",
        routingKey="flow:step:message",
    )
    entry = json.loads(stream.getvalue())
    for name in ("password", "client_secret", "Authorization", "refresh_token", "keys"):
        assert entry[name] == REDACTED, name
    assert entry["tokenUrl"] == "https://login/token"
    assert entry["routingKey"] == "flow:step:message"


def test_secret_names():
    for name in (
        "apiKey",
        "api_key",
        "X-API-KEY",
        "accessToken",
        "clientSecret",
        "password",
        "Authorization",
        "cookie",
        "privateKey",
        "refresh_token",
    ):
        assert is_secret_name(name), name
    for name in (
        "messageId",
        "tokenUrl",
        "token_type",
        "routingKey",
        "username",
        "scope",
        "expires_in",
        "keyLocation",
    ):
        assert not is_secret_name(name), name


def test_error_events_never_carry_registered_secrets():
    SECRETS.add("cs_abcdefgh")
    try:
        raise RuntimeError("client_secret=cs_abcdefgh was refused")
    except RuntimeError as exc:
        payload = error_payload(exc)
    assert "cs_abcdefgh" not in json.dumps(payload)
    assert REDACTED in payload["message"]


def test_secrets_in_cfg_are_registered_by_key_name():
    registry = SecretRegistry()
    registry.add_from(
        {
            "oauth": {"access_token": "at-123456", "expires_in": 3600},
            "apiKey": "k-abcdef",
            "name": "visible",
        }
    )
    assert registry.scrub("at-123456 k-abcdef visible") == f"{REDACTED} {REDACTED} visible"


def test_short_values_are_not_treated_as_secrets():
    registry = SecretRegistry()
    registry.add("abc", 12345, None)
    assert registry.scrub("abc 12345") == "abc 12345"


def test_redact_keeps_structure():
    SECRETS.add("longer-secret-value")
    assert redact({"a": ["x longer-secret-value"], "token": "", "n": 3}) == {
        "a": [f"x {REDACTED}"],
        "token": "",
        "n": 3,
    }


def test_the_registry_stays_small_however_many_tokens_rotate_and_keeps_what_is_in_use():
    registry = SecretRegistry(remember_max=20)
    registry.pin("the-crypto-password")
    live = "live-client-secret"
    for number in range(5000):  # a token that rotates on every message
        registry.add(live, f"access-token-{number:06d}", f"refresh-token-{number:06d}")
    assert len(registry) <= 21
    line = "the-crypto-password live-client-secret access-token-004999 access-token-000001"
    assert registry.scrub(line) == f"{REDACTED} {REDACTED} {REDACTED} access-token-000001"


def test_values_not_renewed_for_a_while_are_forgotten_but_pinned_ones_stay():
    registry = SecretRegistry(remember_seconds=0.0)
    registry.pin("pinned-secret-value")
    registry.add("old-token-value")
    registry.add("new-token-value")  # renewing anything forgets what has expired
    assert registry.scrub("pinned-secret-value old-token-value new-token-value") == (
        f"{REDACTED} old-token-value {REDACTED}"
    )


def test_a_secret_containing_another_is_cut_out_whole():
    registry = SecretRegistry()
    registry.add("abcd", "abcdefgh-secret")
    assert registry.scrub("x abcdefgh-secret y abcd") == f"x {REDACTED} y {REDACTED}"


@responses_lib.activate
def test_a_token_request_registers_its_secrets_not_its_field_values():
    from runtime.auth.credentials import Credentials
    from runtime.auth.token_client import request_token

    responses_lib.post("https://login.example.com/token", json={"access_token": "at-xyz-123"})
    credentials = Credentials.parse(
        {
            "type": "oauth2",
            "clientId": "client-1",
            "clientSecret": "cs-secret-1",
            "refreshToken": "rt-secret-1",
            "tokenUrl": "https://login.example.com/token",
        }
    )
    request_token(credentials, http=requests.Session())
    text = "grant_type=refresh_token scope client-1 rt-secret-1 cs-secret-1 at-xyz-123"
    assert SECRETS.scrub(text) == (
        f"grant_type=refresh_token scope client-1 {REDACTED} {REDACTED} {REDACTED}"
    )
