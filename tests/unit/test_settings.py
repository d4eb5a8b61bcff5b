from __future__ import annotations

import math

import pytest

from runtime.errors import ConfigError
from runtime.redact import SECRETS
from runtime.worker.settings import REQUIRED_ALWAYS, REQUIRED_FOR_MESSAGES, Settings


def env(**extra: str) -> dict[str, str]:
    values = {
        f"ELASTICIO_{key}": f"{key.lower()}-value"
        for key in (*REQUIRED_ALWAYS, *REQUIRED_FOR_MESSAGES)
    }
    values["ELASTICIO_MESSAGE_CRYPTO_IV"] = "0123456789abcdef"
    values.update({f"ELASTICIO_{k}": v for k, v in extra.items()})
    return values


def test_defaults_are_the_node_sailor_ones():
    settings = Settings.from_env(env())
    assert settings.rabbitmq_prefetch_sailor == 1
    assert settings.data_rate_limit == 10
    assert settings.rate_interval == 100
    assert settings.rebound_initial_expiration == 15000
    assert settings.rebound_limit == 20
    assert settings.outgoing_message_size_limit == 10_485_760
    assert settings.amqp_publish_retry_attempts == math.inf
    assert settings.protocol_version == 1
    assert settings.input_format == "default"
    assert settings.thread_pool_size == 1


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("", False),
    ],
)
def test_booleans(raw, value):
    assert Settings.from_env(env(AMQP_PERSISTENT_MESSAGES=raw)).amqp_persistent_messages is value


def test_any_other_string_is_not_quietly_true():
    with pytest.raises(ConfigError, match="'enabled' is not a boolean"):
        Settings.from_env(env(NO_ERROR_REPLIES="enabled"))


def test_every_problem_in_one_message():
    values = env(
        RABBITMQ_PREFETCH_SAILOR="ten",
        PROTOCOL_VERSION="3",
        INPUT_FORMAT="xml",
        MESSAGE_TIMEOUT="0",
        MESSAGE_CRYPTO_IV="short",
    )
    del values["ELASTICIO_FLOW_ID"], values["ELASTICIO_AMQP_URI"]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(values)
    text = str(caught.value)
    assert "missing required variables: ELASTICIO_FLOW_ID, ELASTICIO_AMQP_URI" in text
    assert "ELASTICIO_RABBITMQ_PREFETCH_SAILOR='ten' is not a number" in text
    assert "ELASTICIO_PROTOCOL_VERSION='3' is not one of 1, 2" in text
    assert "ELASTICIO_INPUT_FORMAT='xml' is not one of default, error" in text
    assert "ELASTICIO_MESSAGE_TIMEOUT must be greater than 0" in text
    assert "ELASTICIO_MESSAGE_CRYPTO_IV must be exactly 16 bytes" in text


def test_an_empty_required_variable_counts_as_missing():
    with pytest.raises(ConfigError, match="ELASTICIO_STEP_ID"):
        Settings.from_env(env(STEP_ID=""))


def test_shutdown_hook_mode_needs_no_broker():
    values = {
        k: v
        for k, v in env(HOOK_SHUTDOWN="true").items()
        if k.removeprefix("ELASTICIO_") not in REQUIRED_FOR_MESSAGES
    }
    assert Settings.from_env(values).hook_shutdown is True


def test_additional_vars_are_camel_cased_like_the_sailor_does():
    settings = Settings.from_env(
        env(
            ADDITIONAL_VARS_FOR_HEADERS="ELASTICIO_SECOND_ELASTICIO_ENV, OTHER_VAR,ELASTICIO_GONE",
            SECOND_ELASTICIO_ENV="x",
        )
        | {"OTHER_VAR": "y"}
    )
    assert settings.additional_vars == {"secondElasticioEnv": "x", "otherVar": "y", "gone": None}


def test_pool_size_defaults_to_the_prefetch_and_can_be_set():
    assert Settings.from_env(env(RABBITMQ_PREFETCH_SAILOR="10")).thread_pool_size == 10
    assert (
        Settings.from_env(
            env(RABBITMQ_PREFETCH_SAILOR="10", CONSUMER_THREAD_POOL_SIZE="3")
        ).thread_pool_size
        == 3
    )


def test_secrets_of_the_settings_are_registered():
    Settings.from_env(
        env(
            AMQP_URI="amqp://user:broker-pass-1@rabbit:5672/",
            MESSAGE_CRYPTO_PASSWORD="crypto-pass-1",
        )
    )
    text = SECRETS.scrub("broker-pass-1 crypto-pass-1 api_key-value")
    assert "broker-pass-1" not in text
    assert "crypto-pass-1" not in text
    assert "api_key-value" not in text
