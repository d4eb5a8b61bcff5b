"""Building a worker from its settings: every collaborator made in one place, so the
classes that process messages receive what they use and build nothing."""

from __future__ import annotations

from typing import Any

from runtime import metrics
from runtime.auth.async_session import HttpPool
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.deadlines import adapter as watched_adapter
from runtime.platform.api import PlatformApi
from runtime.platform.object_storage import ObjectStorage
from runtime.platform.secrets import PlatformSecrets
from runtime.step.component import Component
from runtime.step.event_loop import StepLoop
from runtime.step.http import CredentialStores, Sessions, session_factory
from runtime.step.loader import Step
from runtime.step.run_state import is_async
from runtime.step.runners import RunnerPool
from runtime.worker.async_path import AsyncPath
from runtime.worker.completion import Completion
from runtime.worker.crypto import MessageCipher
from runtime.worker.dispatch import Routes
from runtime.worker.keys import KeySaver
from runtime.worker.lightweight import Bodies
from runtime.worker.loop import Worker
from runtime.worker.preparation import Preparation, StepParts
from runtime.worker.publisher import Publisher
from runtime.worker.replica_store import store_from_url
from runtime.worker.replicas import Replicas
from runtime.worker.settings import Settings
from runtime.worker.settlement import Ledger
from runtime.worker.step_state import StepState
from runtime.worker.sync_path import SyncPath
from runtime.worker.transport import BrokerPort

REPLICA_LEASE_MARGIN = 60.0
"""Seconds past a message's time limit that another replica waits for its verdict."""


def assemble_worker(
    *,
    settings: Settings,
    component: Component,
    step: Step,
    broker: BrokerPort,
    api: PlatformApi,
    state: StepState,
    cipher: MessageCipher,
    lock: CredentialLock = IN_PROCESS,
    steps_loop: StepLoop | None = None,
) -> Worker:
    """The worker of one step. An async step needs ``steps_loop``, the event loop it runs
    on (the caller starts and stops it).

    Raises:
        ValueError: an async step and no loop.
    """
    asynchronous = is_async(step.process)
    if asynchronous and steps_loop is None:
        raise ValueError(f"step {step.name!r} is async: the worker needs its event loop")
    publisher = Publisher(broker, settings)
    keys = KeySaver(settings, state, api, publisher, cipher)
    storage = ObjectStorage(
        settings.object_storage_uri,
        settings.object_storage_token,
        flow_id=settings.flow_id,
        step_id=settings.step_id,
    )
    bodies = Bodies(storage, cipher)
    routes = Routes(
        settings=settings,
        cipher=cipher,
        publisher=publisher,
        state=state,
        keys=keys,
        storage=bodies,
    )
    replicas = _replicas(settings)
    ledger = Ledger(broker, prefetch=settings.rabbitmq_prefetch_sailor, replicas=replicas)
    if replicas is not None:
        replicas.start(settle=ledger.settle_asked, admit=ledger.admit_asked)
    metrics.in_flight_from(lambda: ledger.in_flight)
    http_pool = HttpPool()
    sessions = _sessions(settings, component, api, state, lock=lock, pool=http_pool)
    sessions.warm(state.cfg())
    parts = StepParts(settings, step, state, cipher, routes, bodies, sessions)
    runners = RunnerPool("message")
    prep, completion = Preparation(parts, ledger), Completion(ledger, runners)
    path: SyncPath | AsyncPath = (
        AsyncPath(settings, prep, completion, steps_loop)
        if asynchronous and steps_loop is not None
        else SyncPath(settings, prep, completion, runners)
    )
    ledger.on_admitted = path.take
    broker.on_read_lost = ledger.connection_lost
    return Worker(ledger=ledger, path=path, keys=keys, runners=runners, http_pool=http_pool)


def _replicas(settings: Settings) -> Replicas | None:
    """The word shared with the step's other replicas, in the credential lock's store."""
    store = store_from_url(settings.credential_lock_url)
    if store is None:
        return None
    step = f"{settings.flow_id}:{settings.step_id}"
    return Replicas(store, step=step, lease=settings.message_timeout + REPLICA_LEASE_MARGIN)


def _sessions(
    settings: Settings,
    component: Component,
    api: PlatformApi,
    state: StepState,
    *,
    lock: CredentialLock,
    pool: HttpPool,
) -> Sessions:
    """``ctx.http`` for the step's messages: one sync session per credential and thread,
    async ones on the loop's pool, a rotated token re-read from the platform."""

    def fresh_cfg() -> dict[str, Any]:
        """The step's configuration as the platform has it now, saved keys laid over it."""
        config = api.step(settings.flow_id, settings.step_id).get("config")
        return {**state.cfg(), **(config if isinstance(config, dict) else {})}

    return session_factory(
        component.credential_fields(),
        adapter=watched_adapter(
            pool_connections=4, pool_maxsize=max(10, settings.thread_pool_size)
        ),
        pool=pool,
        fresh_cfg=fresh_cfg,
        stores=CredentialStores(lock, PlatformSecrets(api, settings.workspace_id)),
        token_timeout=settings.token_timeout,
        keep=True,
    )
