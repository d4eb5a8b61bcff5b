"""The local platform: what the iPaaS does around a step, on one machine.

It declares each flow's topology, serves the platform API the worker calls (step data
built from the flow file and the credentials file; ``PUT /v1/accounts/{id}`` written back
to the credentials file; the file's entries as the secrets API's secrets, for steps
configured with a ``secretId``), and consumes the ``updateKeys`` routing key into the same
store, with the same comparison: keys that replace other tokens than the stored ones are
refused.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.localplatform import messaging, topology
from runtime.devtools.localplatform.api_server import PlatformApiServer, Webhooks
from runtime.devtools.localplatform.flow import FlowSpec
from runtime.devtools.localplatform.secrets import FileSecrets
from runtime.devtools.localplatform.snapshots import SnapshotStore
from runtime.errors import ConfigError
from runtime.log import get_logger
from runtime.worker.amqp import AdminClient
from runtime.worker.transport import Properties

_log = get_logger(__name__)


class LocalPlatform:
    def __init__(
        self,
        flows: list[FlowSpec],
        *,
        credentials: CredentialsFile | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        webhooks: Webhooks | None = None,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        if not flows:
            raise ConfigError("the local platform needs at least one flow file")
        users = {(f.api_username, f.api_key) for f in flows}
        if len(users) > 1:
            raise ConfigError("all flows of one local platform must share apiUsername and apiKey")
        self.flows = flows
        self.credentials = credentials
        username, password = users.pop()
        self.api = PlatformApiServer(
            username=username,
            password=password,
            on_keys=self._save_keys,
            host=host,
            port=port,
            webhooks=webhooks,
        )
        self.snapshots = snapshots
        self.secrets = FileSecrets(credentials) if credentials is not None else None
        self.api.state.secrets = self.secrets
        self._stop = threading.Event()
        self._consumers: list[threading.Thread] = []

    @property
    def api_url(self) -> str:
        return self.api.url

    def start(self) -> LocalPlatform:
        for flow in self.flows:
            with AdminClient(flow.amqp_url, name="platform") as admin:
                topology.declare(flow, admin)
                if self.snapshots is not None:  # what the last run had no time to keep
                    while (got := admin.get(topology.platform_queue(flow, "snapshot"))) is not None:
                        self._keep_snapshot(flow, *got)
            self._publish_step(flow)
        self.api.start()
        for flow in self.flows:
            thread = threading.Thread(
                target=self._consume_keys, args=(flow,), name="platform-keys", daemon=True
            )
            thread.start()
            self._consumers.append(thread)
            if self.snapshots is not None:
                thread = threading.Thread(target=self._keep_snapshots, args=(flow,),
                                          name="platform-snapshots", daemon=True)  # fmt: skip
                thread.start()
                self._consumers.append(thread)
        return self

    def stop(self, *, remove_topology: bool = False) -> None:
        self._stop.set()
        for thread in self._consumers:
            thread.join(5)
        self.api.stop()
        if remove_topology:
            for flow in self.flows:
                with AdminClient(flow.amqp_url, name="platform") as admin:
                    topology.remove(flow, admin)

    def step_config(self, flow: FlowSpec) -> dict[str, Any]:
        """The step's cfg: the credential's fields (from the credentials file) and the step's."""
        config = dict(flow.config)
        if flow.credential:
            if self.credentials is None:
                raise ConfigError(
                    f"flow {flow.flow_id} names credential {flow.credential!r} but no "
                    "credentials file was given"
                )
            config = {**self.credentials.entry(flow.credential), **config}
        return config

    def _publish_step(self, flow: FlowSpec) -> None:
        data = flow.step_data(self.step_config(flow))
        if self.snapshots is not None:
            kept = self.snapshots.load(flow.flow_id, flow.step_id)
            if kept is not None:
                data["snapshot"] = kept
        self.api.add_step(flow.flow_id, flow.step_id, data)

    def _keep_snapshot(self, flow: FlowSpec, body: bytes, properties: Properties) -> None:
        if self.snapshots is None:
            return
        event = str(properties.headers.get("snapshotEvent") or "snapshot")
        try:
            payload = json.loads(body)
        except ValueError:
            _log.warning("snapshot_not_json", flow=flow.flow_id, step=flow.step_id)
            return
        snapshot = self.snapshots.apply(flow.flow_id, flow.step_id, event, payload)
        with self.api.state.lock:
            step = self.api.state.steps.get((flow.flow_id, flow.step_id))
            if step is not None:
                step["snapshot"] = snapshot

    def _keep_snapshots(self, flow: FlowSpec) -> None:
        store = self.snapshots
        if store is None:
            return

        def on_message(body: bytes, properties: Properties) -> None:
            event = str(properties.headers.get("snapshotEvent") or "snapshot")
            snapshot = store.apply(flow.flow_id, flow.step_id, event, json.loads(body))
            with self.api.state.lock:
                step = self.api.state.steps.get((flow.flow_id, flow.step_id))
                if step is not None:
                    step["snapshot"] = snapshot

        try:
            with AdminClient(flow.amqp_url, name="platform-snapshots") as admin:
                admin.consume(
                    topology.platform_queue(flow, "snapshot"), on_message, stop=self._stop
                )
        except Exception as exc:  # noqa: BLE001 - the platform keeps serving; say why
            _log.error("snapshot_keeper_stopped", flow=flow.flow_id, error=str(exc))

    def _save_keys(self, account: str, keys: dict[str, Any]) -> None:
        """Called, one at a time, once the API's account store took new keys."""
        if self.credentials is not None and account in self.credentials.names():
            self.credentials.save(account, keys)
            _log.info("credential_saved", credential=account)

    def _consume_keys(self, flow: FlowSpec) -> None:
        def on_message(body: bytes, properties: Properties) -> None:
            event = messaging.read(flow, "keys", body, properties)
            payload = event["payload"]
            account = str(payload.get("account") or flow.account)
            replaces = payload.get("replaces")
            keys = payload.get("keys") or {}
            if not self.api.state.save_account(account, keys, replaces):
                # Newer keys were saved first (through the accounts API, or by another replica).
                _log.info("keys_superseded", credential=account)

        try:
            with AdminClient(flow.amqp_url, name="platform-keys") as admin:
                admin.consume(flow.output_queue("keys"), on_message, stop=self._stop)
        except Exception as exc:  # noqa: BLE001 - the platform keeps serving; say why keys stop
            _log.error("keys_consumer_stopped", flow=flow.flow_id, error=str(exc))
