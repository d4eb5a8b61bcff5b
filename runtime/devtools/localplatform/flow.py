"""The flow file: one step of a flow, described the way the platform would wire it.

::

    {
      "flowId": "demo-flow", "stepId": "step_1", "function": "httpRequest",
      "config": {"method": "GET", "url": "/api/me"},
      "credential": "demo",
      "snapshot": {}, "variables": {}, "isPassthrough": false,
      "amqpUrl": "amqp://guest:guest@127.0.0.1:5672/",
      "crypto": {"password": "${DEMO_CRYPTO_PASSWORD}", "iv": "0123456789abcdef"}
    }

Everything else (queue, exchange, routing keys, ids) is derived from the flow and step ids,
or given explicitly. ``worker_env`` is exactly the environment the platform gives a step.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.devtools.jsonfiles import read_json_object
from runtime.errors import ConfigError

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_LOCK_URL = f"file://{Path(tempfile.gettempdir()) / 'runtime-credential-locks'}"
"""Replicas started on this machine from ``platform env`` refresh a shared credential one at
a time without any other service; across machines, use a ``redis://`` URL instead."""
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Crypto(BaseModel):
    model_config = ConfigDict(frozen=True)
    password: str = "local-platform-password"
    iv: str = "0123456789abcdef"


class FlowSpec(BaseModel):
    """One step of a flow, with everything the platform would give it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    flow_id: str = Field(default="local-flow", alias="flowId")
    step_id: str = Field(default="step_1", alias="stepId")
    function: str
    config: dict[str, Any] = {}
    credential: str | None = None
    """Name of the credentials-file entry merged into ``config`` (its keys saved back there)."""
    account_id: str | None = Field(default=None, alias="accountId")
    snapshot: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    is_passthrough: bool = Field(default=False, alias="isPassthrough")
    amqp_url: str = Field(default=DEFAULT_AMQP_URL, alias="amqpUrl")
    """One broker, or a cluster's nodes comma-separated (the worker gets the list as is)."""
    queue_type: Literal["classic", "quorum"] = Field(default="classic", alias="queueType")
    """``quorum``: the step's queue and its output queues are replicated on the cluster's
    nodes (the rebound queue stays classic: it holds messages only for their delay)."""
    credential_lock_url: str = Field(default=DEFAULT_LOCK_URL, alias="credentialLockUrl")
    """``ELASTICIO_CREDENTIAL_LOCK_URL`` of the step's replicas; empty for in-process only."""
    crypto: Crypto = Crypto()
    output_limit: int | None = Field(default=None, alias="outputLimit", ge=1)
    """How many events each output queue keeps for ``tail`` (the oldest dropped first); all
    of them when unset. Nodes of a whole flow keep 10,000: their data is also routed on."""
    protocol_version: int = Field(default=1, alias="protocolVersion")
    prefetch: int = 1
    exchange: str | None = None
    queue: str | None = None
    user_id: str = Field(default="local-user", alias="userId")
    workspace_id: str = Field(default="local-workspace", alias="workspaceId")
    api_username: str = Field(default="local-task-user", alias="apiUsername")
    api_key: str = Field(default="local-task-key", alias="apiKey")
    extra_env: dict[str, str] = Field(default={}, alias="env")

    @property
    def prefix(self) -> str:
        return f"{self.flow_id}:{self.step_id}"

    @property
    def publish_exchange(self) -> str:
        return self.exchange or f"userexchange:{self.workspace_id}"

    @property
    def messages_queue(self) -> str:
        return self.queue or f"{self.prefix}:messages"

    def routing_key(self, kind: str) -> str:
        """``input``, ``message``, ``error``, ``rebound``, ``snapshot``, ``keys``, ``reply``."""
        return f"{self.prefix}:{kind}"

    def output_queue(self, kind: str) -> str:
        return f"{self.prefix}:out:{kind}"

    @property
    def account(self) -> str:
        return self.account_id or self.credential or f"{self.prefix}:account"

    def worker_env(self, api_uri: str) -> dict[str, str]:
        """The ``ELASTICIO_*`` environment the platform gives this step's container."""
        env = {
            "ELASTICIO_FLOW_ID": self.flow_id,
            "ELASTICIO_EXEC_ID": f"{self.flow_id}-exec",
            "ELASTICIO_STEP_ID": self.step_id,
            "ELASTICIO_CONTAINER_ID": f"{self.prefix}:container",
            "ELASTICIO_WORKSPACE_ID": self.workspace_id,
            "ELASTICIO_USER_ID": self.user_id,
            "ELASTICIO_COMP_ID": "local-component",
            "ELASTICIO_FUNCTION": self.function,
            "ELASTICIO_API_URI": api_uri,
            "ELASTICIO_API_USERNAME": self.api_username,
            "ELASTICIO_API_KEY": self.api_key,
            "ELASTICIO_AMQP_URI": self.amqp_url,
            "ELASTICIO_LISTEN_MESSAGES_ON": self.messages_queue,
            "ELASTICIO_PUBLISH_MESSAGES_TO": self.publish_exchange,
            "ELASTICIO_DATA_ROUTING_KEY": self.routing_key("message"),
            "ELASTICIO_ERROR_ROUTING_KEY": self.routing_key("error"),
            "ELASTICIO_REBOUND_ROUTING_KEY": self.routing_key("rebound"),
            "ELASTICIO_SNAPSHOT_ROUTING_KEY": self.routing_key("snapshot"),
            "ELASTICIO_UPDATE_KEYS_ROUTING_KEY": self.routing_key("keys"),
            "ELASTICIO_MESSAGE_CRYPTO_PASSWORD": self.crypto.password,
            "ELASTICIO_MESSAGE_CRYPTO_IV": self.crypto.iv,
            "ELASTICIO_PROTOCOL_VERSION": str(self.protocol_version),
            "ELASTICIO_RABBITMQ_PREFETCH_SAILOR": str(self.prefetch),
        }
        if self.credential_lock_url:
            env["ELASTICIO_CREDENTIAL_LOCK_URL"] = self.credential_lock_url
        env.update(self.extra_env)
        return env

    def step_data(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What ``GET /v1/tasks/{flow}/steps/{step}`` answers."""
        return {
            "id": self.step_id,
            "config": {**config, "_account": self.account},
            "snapshot": self.snapshot,
            "variables": self.variables,
            "is_passthrough": self.is_passthrough,
        }


def load_flow(path: str | Path, env: Mapping[str, str] | None = None) -> FlowSpec:
    """Read a flow file, resolving ``${ENV_VAR}`` references.

    Raises:
        ConfigError: missing file, bad JSON, unknown fields or unset variables.
    """
    data = read_json_object(str(path), what="flow")
    resolved = resolve_references(data, os.environ if env is None else env, str(path))
    try:
        return FlowSpec.model_validate(resolved)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"flow file {path}: {problems}") from None


def resolve_references(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"flow file {where} refers to ${{{name}}}, which is not set")
            return env[name]

        return _REFERENCE.sub(lookup, value)
    if isinstance(value, dict):
        return {k: resolve_references(v, env, where) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, env, where) for v in value]
    return value
