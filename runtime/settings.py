"""The worker's settings: every ``ELASTICIO_*`` variable of the Node.js sailor, and a few more.

Read with ``Settings.from_env(os.environ)`` (tests pass a dict). Unlike the Node.js sailor,
a boolean is only ``true/false/1/0/yes/no`` (there, any string but "false" is true), a
number that does not parse is an error rather than silently the default, and every missing
or malformed variable is reported in one message.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from runtime.errors import ConfigError
from runtime.redact import SECRETS

PREFIX: Final = "ELASTICIO_"

REQUIRED_ALWAYS: Final = (
    "FLOW_ID", "EXEC_ID", "STEP_ID", "CONTAINER_ID", "WORKSPACE_ID",
    "USER_ID", "COMP_ID", "FUNCTION", "API_URI", "API_USERNAME", "API_KEY",
)  # fmt: skip
REQUIRED_FOR_MESSAGES: Final = (
    "AMQP_URI", "LISTEN_MESSAGES_ON", "PUBLISH_MESSAGES_TO", "DATA_ROUTING_KEY",
    "ERROR_ROUTING_KEY", "REBOUND_ROUTING_KEY", "SNAPSHOT_ROUTING_KEY",
    "MESSAGE_CRYPTO_IV", "MESSAGE_CRYPTO_PASSWORD",
)  # fmt: skip

_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off", ""})


class Settings(BaseModel):
    """The worker's configuration, validated once at start-up."""

    model_config = ConfigDict(frozen=True)

    # required always
    flow_id: str
    exec_id: str
    step_id: str
    container_id: str
    workspace_id: str
    user_id: str
    comp_id: str
    function: str
    api_uri: str
    api_username: str
    api_key: str
    # required for message processing (not in shutdown-hook mode)
    amqp_uri: str = ""
    listen_messages_on: str = ""
    publish_messages_to: str = ""
    data_routing_key: str = ""
    error_routing_key: str = ""
    rebound_routing_key: str = ""
    snapshot_routing_key: str = ""
    message_crypto_iv: str = ""
    message_crypto_password: str = ""
    # optional, with the Node.js sailor's defaults
    component_path: str = ""
    rabbitmq_prefetch_sailor: int = 1
    startup_required: bool = False
    hook_shutdown: bool = False
    api_request_retry_attempts: int = 3
    api_request_retry_delay: int = 100
    data_rate_limit: int = 10
    error_rate_limit: int = 2
    snapshot_rate_limit: int = 2
    rate_interval: int = 100
    process_amqp_drain: bool = True
    amqp_publish_retry_delay: int = 100
    amqp_publish_retry_attempts: float = math.inf
    amqp_publish_max_retry_delay: int = 300_000
    amqp_persistent_messages: bool = False
    outgoing_message_size_limit: int = 10_485_760
    no_self_passtrhough: bool = False
    protocol_version: Literal[1, 2] = 1
    no_error_replies: bool = False
    input_format: Literal["default", "error"] = "default"
    object_storage_uri: str | None = None
    object_storage_token: str | None = None
    object_storage_size_threshold: int = 1_048_576
    emit_lightweight_message: bool = False
    amqp_reconnect_attempts: int = 3
    amqp_reconnect_timeout: int = 100
    wait_messages_timeout: int = 50
    rebound_initial_expiration: int = 15_000
    rebound_limit: int = 20
    # ours
    incoming_message_size_limit: int = 10_485_760
    """Larger message bodies (as they travel, encrypted) are rejected unread; the default is
    what another step may send (the sailor's OUTGOING_MESSAGE_SIZE_LIMIT)."""
    consumer_thread_pool_size: int = 0
    """Steps run at once; 0 means the prefetch."""
    message_timeout: float = 1800.0
    """Seconds one message may take before its step is stopped with an error."""
    shutdown_timeout: float = 60.0
    """Seconds a SIGTERM waits for messages in flight before closing anyway."""
    publish_timeout: float = 60.0
    """Seconds to wait for the broker to confirm one publish (reconnects included)."""
    amqp_reconnect_deadline: float = 300.0
    """Seconds the worker keeps reconnecting to a lost broker before exiting with code 1."""
    health_file: str = str(Path(tempfile.gettempdir()) / "runtime-worker.health")
    """Touched every second while the worker consumes; ``python -m runtime health`` reads it."""
    update_keys_routing_key: str | None = None
    """Where ``updateKeys`` are also published, encrypted (the local platform consumes it)."""
    credential_lock_url: str | None = None
    """How replicas sharing a credential refresh one at a time: ``redis://HOST:PORT/DB``
    (several machines), ``file:///DIR`` (one machine); unset: this process only."""
    credential_lock_lease: float = 45.0
    """Seconds a Redis lock outlives a holder that died (it is renewed while held)."""
    credential_lock_timeout: float = 60.0
    """Seconds a refresh waits for the lock before failing with a retryable error."""
    additional_vars: dict[str, str | None] = {}
    """``ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS``: headers, camel-cased names."""

    @property
    def thread_pool_size(self) -> int:
        return self.consumer_thread_pool_size or self.rabbitmq_prefetch_sailor

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings from an environment mapping.

        Raises:
            ConfigError: listing every missing required variable and every malformed value.
        """
        problems: list[str] = []
        values: dict[str, Any] = {}
        hook_shutdown = _boolean(env, "HOOK_SHUTDOWN", problems) is True
        required = REQUIRED_ALWAYS + ((), REQUIRED_FOR_MESSAGES)[not hook_shutdown]
        missing = [PREFIX + key for key in required if not env.get(PREFIX + key)]
        if missing:
            problems.insert(0, "missing required variables: " + ", ".join(missing))
        for name, field in cls.model_fields.items():
            key = name.upper()
            raw = env.get(PREFIX + key)
            if raw is None or name == "additional_vars":
                continue
            parsed = _parse(field.annotation, key, raw, problems)
            if parsed is not None:
                values[name] = parsed
        values["additional_vars"] = _additional_vars(env)
        _check_ranges(values, problems)
        if problems:
            raise ConfigError("invalid worker settings:\n  " + "\n  ".join(problems))
        settings = cls.model_validate(values)
        SECRETS.pin(
            settings.message_crypto_password,
            settings.api_key,
            settings.object_storage_token,
            *_uri_passwords(
                settings.amqp_uri, settings.api_uri, settings.credential_lock_url or ""
            ),
        )
        return settings


def _parse(annotation: Any, key: str, raw: str, problems: list[str]) -> Any:
    name = PREFIX + key
    text = raw.strip()
    if annotation is bool:
        return _boolean({name: raw}, key, problems)
    if annotation in (int, float):
        if annotation is float and text.lower() in ("infinity", "inf"):
            return math.inf
        try:
            return int(text) if annotation is int else float(text)
        except ValueError:
            problems.append(f"{name}={raw!r} is not a number")
            return None
    choices = getattr(annotation, "__args__", ())
    if choices and all(isinstance(c, int | str) and not isinstance(c, bool) for c in choices):
        for choice in choices:
            if str(choice) == text:
                return choice
        if "None" in str(annotation):
            return raw or None
        allowed = ", ".join(str(c) for c in choices)
        problems.append(f"{name}={raw!r} is not one of {allowed}")
        return None
    return raw or None if "None" in str(annotation) else raw


def _boolean(env: Mapping[str, str], key: str, problems: list[str]) -> bool | None:
    raw = env.get(PREFIX + key) if PREFIX + key in env else env.get(key)
    if raw is None:
        return None
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    problems.append(f"{PREFIX}{key}={raw!r} is not a boolean (use true/false, 1/0 or yes/no)")
    return None


def _check_ranges(values: Mapping[str, Any], problems: list[str]) -> None:
    positive = (
        "rabbitmq_prefetch_sailor",
        "message_timeout",
        "shutdown_timeout",
        "publish_timeout",
        "rate_interval",
        "outgoing_message_size_limit",
        "incoming_message_size_limit",
        "credential_lock_lease",
        "credential_lock_timeout",
    )
    problems.extend(
        f"{PREFIX}{name.upper()} must be greater than 0"
        for name in positive
        if name in values and values[name] <= 0
    )
    iv = values.get("message_crypto_iv")
    if iv and len(str(iv).encode()) != 16:
        problems.append(f"{PREFIX}MESSAGE_CRYPTO_IV must be exactly 16 bytes")
    if values.get("consumer_thread_pool_size", 0) < 0:
        problems.append(f"{PREFIX}CONSUMER_THREAD_POOL_SIZE cannot be negative")


def _camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def _additional_vars(env: Mapping[str, str]) -> dict[str, str | None]:
    """Header values named in ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS, as the sailor names them."""
    listed = env.get(PREFIX + "ADDITIONAL_VARS_FOR_HEADERS")
    if not listed:
        return {}
    result: dict[str, str | None] = {}
    for variable in (v.strip() for v in listed.split(",")):
        if variable:
            key = variable[len(PREFIX) :] if variable.startswith(PREFIX) else variable
            result[_camel(key)] = env.get(variable)
    return result


def _uri_passwords(*uris: str) -> list[str]:
    matches = (re.match(r"^[a-z+]+://[^:/@]*:([^@/]+)@", uri or "") for uri in uris)
    return [match.group(1) for match in matches if match]
