"""The worker's settings: every ``ELASTICIO_*`` variable of the Node.js sailor, and a few more.

Read with ``Settings.from_env(os.environ)`` (tests pass a dict): the variables' text goes
through pydantic's lax validation, so numbers, booleans and choices are parsed by the
model's own types. Unlike the Node.js sailor, a boolean is only ``true/false/1/0/yes/no/
on/off`` or empty (there, any string but "false" is true), a number that does not parse is
an error rather than silently the default, and every missing or malformed variable is
reported in one message.

Accepted and ignored, as the Node.js sailor 2.7.8 does or because the worker has a better
mechanism for the same job:

* ``ELASTICIO_WAIT_MESSAGES_TIMEOUT``: no reader in the sailor either (a leftover of its
  old polling consumer).
* ``ELASTICIO_PROCESS_AMQP_DRAIN``: the sailor waits for amqplib's ``drain`` event when the
  socket buffer is full; here publishes are confirmed by the broker and a step's emits wait
  once 64 of its publishes are unconfirmed, which bounds memory the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from runtime.errors import ConfigError
from runtime.health import default_health_file
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


def _empty_is_false(value: Any) -> Any:
    return False if isinstance(value, str) and not value.strip() else value


def _number_text(value: Any) -> Any:
    """``"2"`` for a numeric choice: lax mode does not parse text into an int literal."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


EnvBool = Annotated[bool, BeforeValidator(_empty_is_false)]
Positive = Annotated[int, Field(gt=0)]
PositiveSeconds = Annotated[float, Field(gt=0)]
OptionalText = Annotated[str | None, BeforeValidator(_empty_is_none)]
_BOOLEAN = TypeAdapter(EnvBool)


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
    rabbitmq_prefetch_sailor: Positive = 1
    startup_required: EnvBool = False
    hook_shutdown: EnvBool = False
    api_request_retry_attempts: int = 3
    api_request_retry_delay: int = 100
    data_rate_limit: int = 10
    error_rate_limit: int = 2
    snapshot_rate_limit: int = 2
    rate_interval: Positive = 100
    process_amqp_drain: EnvBool = True
    """Accepted and ignored (see the module's docstring)."""
    amqp_publish_retry_delay: int = 100
    amqp_publish_retry_attempts: float = math.inf
    amqp_publish_max_retry_delay: int = 300_000
    amqp_persistent_messages: EnvBool = False
    outgoing_message_size_limit: Positive = 10_485_760
    no_self_passtrhough: EnvBool = False
    protocol_version: Annotated[Literal[1, 2], BeforeValidator(_number_text)] = 1
    no_error_replies: EnvBool = False
    input_format: Literal["default", "error"] = "default"
    object_storage_uri: OptionalText = None
    object_storage_token: OptionalText = None
    object_storage_size_threshold: int = 1_048_576
    emit_lightweight_message: EnvBool = False
    amqp_reconnect_attempts: int = 3
    amqp_reconnect_timeout: int = 100
    wait_messages_timeout: int = 50
    """Accepted and ignored (see the module's docstring)."""
    rebound_initial_expiration: int = 15_000
    rebound_limit: int = 20
    # ours
    incoming_message_size_limit: Positive = 10_485_760
    """Larger message bodies (as they travel, encrypted) are rejected unread; the default is
    what another step may send (the sailor's OUTGOING_MESSAGE_SIZE_LIMIT)."""
    consumer_thread_pool_size: Annotated[int, Field(ge=0)] = 0
    """Steps run at once; 0 means the prefetch."""
    message_timeout: PositiveSeconds = 1800.0
    """Seconds one message may take before its step is stopped with an error."""
    shutdown_timeout: PositiveSeconds = 60.0
    """Seconds a SIGTERM waits for messages in flight before closing anyway."""
    publish_timeout: PositiveSeconds = 60.0
    """Seconds to wait for the broker to confirm one publish (reconnects included)."""
    amqp_reconnect_deadline: float = 300.0
    """Seconds the worker keeps reconnecting to a lost broker before exiting with code 1."""
    amqp_heartbeat: Annotated[int, Field(ge=0, le=600)] = 5
    """Seconds within which the broker and the worker each expect to hear from the other
    (AMQP heartbeats): a node that goes silent, a frozen one included, is left for another
    within 2 * (this + 5) s, 20 s by default. 0: the broker's own (60 s on RabbitMQ). A
    ``heartbeat`` in ELASTICIO_AMQP_URI wins."""
    amqp_connection_name: OptionalText = None
    """Names the two broker connections ``{name}-read`` and ``{name}-write``; by default
    the host name, as the Node.js sailor does (in a container, the container's)."""
    health_file: str = Field(default_factory=default_health_file)
    """Touched every second while the worker consumes; ``python -m runtime health`` reads it."""
    update_keys_routing_key: OptionalText = None
    """Where ``updateKeys`` are also published, encrypted (the local platform consumes it)."""
    credential_lock_url: OptionalText = None
    """How replicas sharing a credential refresh one at a time: ``redis://HOST:PORT/DB``
    (several machines), ``file:///DIR`` (one machine); unset: this process only."""
    credential_lock_lease: PositiveSeconds = 45.0
    """Seconds a Redis lock outlives a holder that died (it is renewed while held)."""
    credential_lock_timeout: PositiveSeconds = 60.0
    """Seconds a refresh waits for the lock before failing with a retryable error."""
    token_timeout: PositiveSeconds = 30.0
    """Seconds one token refresh may take in all (retries, and an answer trickling in): the
    credential's locks are held meanwhile, and the other replicas wait for it."""
    metrics_port: Annotated[int | None, Field(ge=0, le=65535)] = None
    """Serves Prometheus metrics and the /livez and /readyz probes on this port (0: any
    free port, logged); unset: no port, and metrics are not counted at all."""
    additional_vars: dict[str, str | None] = {}
    """``ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS``: headers, camel-cased names."""

    @property
    def thread_pool_size(self) -> int:
        return self.consumer_thread_pool_size or self.rabbitmq_prefetch_sailor

    @field_validator("message_crypto_iv")
    @classmethod
    def _sixteen_bytes(cls, value: str) -> str:
        if value and len(value.encode()) != 16:
            raise ValueError("must be exactly 16 bytes")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings from an environment mapping.

        Raises:
            ConfigError: listing every missing required variable and every malformed value.
        """
        problems: list[str] = []
        required = REQUIRED_ALWAYS + ((), REQUIRED_FOR_MESSAGES)[not _hook_shutdown(env)]
        missing = [PREFIX + key for key in required if not env.get(PREFIX + key)]
        if missing:
            problems.append("missing required variables: " + ", ".join(missing))
        values: dict[str, Any] = {
            name: env[PREFIX + name.upper()]
            for name in cls.model_fields
            if PREFIX + name.upper() in env and name != "additional_vars"
        }
        values["additional_vars"] = _additional_vars(env)
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            problems.extend(_problem(error, values) for error in exc.errors())
            problems = [p for p in problems if p]
            raise ConfigError("invalid worker settings:\n  " + "\n  ".join(problems)) from None
        if problems:
            raise ConfigError("invalid worker settings:\n  " + "\n  ".join(problems))
        SECRETS.pin(
            settings.message_crypto_password,
            settings.api_key,
            settings.object_storage_token,
            *_uri_passwords(
                settings.amqp_uri, settings.api_uri, settings.credential_lock_url or ""
            ),
        )
        return settings


def _hook_shutdown(env: Mapping[str, str]) -> bool:
    raw = env.get(PREFIX + "HOOK_SHUTDOWN")
    try:
        return raw is not None and bool(_BOOLEAN.validate_python(raw))
    except ValidationError:
        return False  # reported with the other problems


def _problem(error: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    """One line for a malformed variable; nothing for a missing one (listed apart)."""
    if error["type"] == "missing":
        return ""
    field = str(error["loc"][0])
    name = PREFIX + field.upper()
    raw = values.get(field)
    kind = error["type"]
    if kind in ("int_parsing", "float_parsing", "int_from_float"):
        return f"{name}={raw!r} is not a number"
    if kind == "bool_parsing":
        return f"{name}={raw!r} is not a boolean (use true/false, 1/0 or yes/no)"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", "")).replace(" or ", ", ")
        choices = expected.replace("'", "")
        return f"{name}={raw!r} is not one of {choices}"
    if kind in ("greater_than", "greater_than_equal"):
        limit = error.get("ctx", {}).get("gt", error.get("ctx", {}).get("ge"))
        relation = "greater than" if kind == "greater_than" else "at least"
        return f"{name} must be {relation} {limit}"
    return f"{name} {error['msg'].removeprefix('Value error, ')}"


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
    # ELASTICIO_AMQP_URI may list a cluster's nodes, comma-separated.
    each = [part.strip() for uri in uris for part in (uri or "").split(",")]
    matches = (re.match(r"^[a-z+]+://[^:/@]*:([^@/]+)@", uri) for uri in each)
    return [match.group(1) for match in matches if match]
