"""``python -m runtime run``: the worker's start-up, signals, shutdown and exit codes.

Start-up follows the Node.js sailor: connect, fetch the step data, load the step, run the
``startup`` hook if required and the ``init`` hook, then consume. A failure once the broker
is connected is published as an error (so the platform shows it) and exits 1. SIGTERM or
SIGINT stops consuming, lets messages in flight finish (up to ELASTICIO_SHUTDOWN_TIMEOUT),
settles them, closes and exits 0; a second signal changes nothing.

Exit codes: 0 clean stop, 1 failure (broker, platform, step), 2 bad settings or component.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from runtime import log, metrics
from runtime.auth.lock_store import lock_from_url
from runtime.auth.locks import IN_PROCESS, CredentialLock
from runtime.errors import ConfigError, TransportError
from runtime.platform.api import PlatformApi
from runtime.step.component import Component, component_root, load_component
from runtime.step.event_loop import StepLoop
from runtime.step.hooks import call_hook
from runtime.step.loader import Step, load_step
from runtime.step.run_state import is_async
from runtime.worker.amqp import Broker, OnAsyncioLoop, PublishRetry, Reconnect, Recovery
from runtime.worker.assembly import assemble_worker
from runtime.worker.crypto import MessageCipher
from runtime.worker.lifecycle import run_shutdown, run_startup
from runtime.worker.loop import Worker, report_startup_error
from runtime.worker.probes import Probes, ProbeServer
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.step_state import StepState
from runtime.worker.transport import Delivery

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
STUCK_THREADS_LIMIT = 8

_log = log.get_logger(__name__)


def log_context(settings: Settings) -> dict[str, str]:
    return {
        "flowId": settings.flow_id,
        "stepId": settings.step_id,
        "function": settings.function,
        "compId": settings.comp_id,
        "execId": settings.exec_id,
        "containerId": settings.container_id,
    }


def run_worker(env: Mapping[str, str], *, cwd: Path, log_format: str | None = None) -> int:
    started = time.monotonic() - process_age()
    settings = Settings.from_env(env)
    log.configure(fmt=log_format, static=log_context(settings))
    api = PlatformApi(
        settings.api_uri,
        settings.api_username,
        settings.api_key,
        attempts=settings.api_request_retry_attempts,
        delay_ms=settings.api_request_retry_delay,
    )
    root = component_root(cwd, settings.component_path)
    if settings.hook_shutdown:
        return _shutdown_hook(settings, api, root)
    return _Run(settings, api, root, started).serve()


def worker_probes(run: _Run) -> Probes:
    def live() -> str | None:
        if not run.broker_started:
            return None  # still starting: alive, not ready
        limit = run.settings.message_timeout
        blocked = run.steps_loop.blocked_for
        if blocked > limit:
            return (
                f"a step has blocked the steps' event loop for {blocked:.0f} s, "
                "longer than a message may take; restart the worker"
            )
        # A broker sharing that loop may be held up by a step, up to its time limit.
        silence = limit + 10 if run.broker_on_steps_loop else 10.0
        if not run.broker.loop_alive(max_silence=silence):
            return "the AMQP I/O loop is not turning; restart the worker"
        return None

    def ready() -> str | None:
        if run.stop.is_set():
            return "stopping"
        if run.worker is None:
            return "starting"
        if not run.broker.consuming:
            return "not consuming: the connection to the broker is being reopened"
        if not run.broker.publishing:
            return "the publishing channel is closed: it is being reopened"
        return None

    return Probes(live=live, ready=ready)


def process_age() -> float:
    """Seconds since this process started (from /proc where there is one, else 0), so that
    start-up time includes the interpreter and the imports."""
    try:
        since_boot = float(Path("/proc/uptime").read_text().split()[0])
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return max(0.0, since_boot - int(fields[19]) / ticks)
    except (OSError, ValueError, IndexError):
        return 0.0


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError as exc:
        _log.warning("health_file_not_written", path=str(path), error=str(exc))


def _shutdown_hook(settings: Settings, api: PlatformApi, root: Path) -> int:
    try:
        step = load_step(load_component(root), settings.function)
        state = StepState(api.step(settings.flow_id, settings.step_id))
        run_shutdown(step, state.cfg(), api, settings.flow_id)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, then a failing exit code
        _log.error("shutdown_hook_failed", error=str(exc))
        return EXIT_FAILED
    _log.info("shutdown_hook_done")
    return EXIT_OK


def load_early(root: Path, function: str) -> tuple[Component, Step] | None:
    """The component and the step to run, before connecting (whether the step is async
    decides where the connections live); None when they cannot be loaded: loading them
    again once connected reports why, as the platform expects."""
    try:
        component = load_component(root)
        return component, load_step(component, function)
    except Exception:  # noqa: BLE001 - reported by the real load, after connecting
        return None


def credential_lock(settings: Settings) -> CredentialLock:
    """The lock replicas refresh shared credentials under; says once how they coordinate."""
    lock = lock_from_url(
        settings.credential_lock_url,
        secret=settings.message_crypto_password or None,
        lease=settings.credential_lock_lease,
        wait=settings.credential_lock_timeout,
    )
    if lock is IN_PROCESS:
        _log.info(
            "credential_lock",
            store=lock.where,
            note="token refreshes are coordinated within this process only; set "
            "ELASTICIO_CREDENTIAL_LOCK_URL when replicas share a credential",
        )
        return lock
    problem = lock.check()
    if problem is None:
        _log.info("credential_lock", store=lock.where)
    else:
        _log.warning(
            "credential_lock_unreachable",
            store=lock.where,
            problem=problem,
            note="refreshes will fail until it answers; nothing else needs it",
        )
    return lock


class _Run:
    def __init__(self, settings: Settings, api: PlatformApi, root: Path, started: float) -> None:
        self.settings = settings
        self.api = api
        self.root = root
        self.started = started
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.worker: Worker | None = None
        # One event loop for the worker's life: the tasks of an async step's messages and
        # async hooks. An async step's broker connections live on it too (measured: a
        # delivery, its publishes and confirms then never cross a thread); a sync step's
        # keep a thread of their own, as its messages run on threads anyway.
        self.steps_loop = StepLoop(step=settings.function)
        self.loaded = load_early(root, settings.function)
        self.broker_on_steps_loop = self.loaded is not None and is_async(self.loaded[1].process)
        self.broker_started = False
        self.cipher = MessageCipher(settings.message_crypto_password, settings.message_crypto_iv)
        self.broker = Broker(
            settings.amqp_uri,
            queue=settings.listen_messages_on,
            prefetch=settings.rabbitmq_prefetch_sailor,
            on_delivery=self._deliver,
            name=settings.amqp_connection_name or socket.gethostname(),
            recovery=Recovery(
                reconnect=Reconnect(
                    first_delay=max(0.05, settings.amqp_reconnect_timeout / 1000),
                    startup_attempts=1 + max(0, settings.amqp_reconnect_attempts),
                    deadline=settings.amqp_reconnect_deadline,
                ),
                publish_retry=PublishRetry(
                    delay=settings.amqp_publish_retry_delay / 1000,
                    attempts=settings.amqp_publish_retry_attempts,
                    max_delay=settings.amqp_publish_max_retry_delay / 1000,
                ),
                on_fatal=self._on_fatal,
                heartbeat=settings.amqp_heartbeat or None,
            ),
            io=(
                OnAsyncioLoop(self.steps_loop.loop, self.steps_loop.thread)
                if self.broker_on_steps_loop
                else None
            ),
        )

    def _deliver(self, delivery: Delivery) -> None:
        if self.worker is None:  # consuming starts only once the worker exists
            raise RuntimeError("delivery before the worker was ready")
        self.worker.on_delivery(delivery)

    def _on_fatal(self, error: BaseException) -> None:
        _log.error("broker_lost", error=str(error))
        self.fatal = error
        self.stop.set()

    def serve(self) -> int:
        probes = self._serve_probes()
        self.steps_loop.start()
        try:
            return self._serve()
        finally:
            self.steps_loop.stop()
            if probes is not None:
                probes.close()

    def _serve_probes(self) -> ProbeServer | None:
        port = self.settings.metrics_port
        if port is None:
            return None
        try:
            return ProbeServer(port, metrics.enable(), worker_probes(self)).start()
        except OSError as exc:
            # Counting goes on; only the port is missing, and the log says why.
            _log.error("metrics_port_unavailable", port=port, error=str(exc))
            return None

    def _serve(self) -> int:
        try:
            self.broker.start()
            self.broker_started = True
        except TransportError as exc:
            _log.error("broker_unreachable", error=str(exc))
            return EXIT_FAILED
        try:
            self._prepare()
            self._install_signals()
            # What start-up made (modules, the component, the step's state) lives as long as
            # the process: out of the collector's sight, a full collection walks only what
            # messages made, not the tens of thousands of objects of every import.
            gc.freeze()
            self.broker.consume()
        except ConfigError as exc:
            self._report(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - every start-up failure is reported the same way
            self._report(exc)
            _log.error("startup_failed", error=str(exc))
            return EXIT_FAILED
        _log.info(
            "worker_ready",
            startup_seconds=round(time.monotonic() - self.started, 3),
            amqp_io="steps-loop" if self.broker_on_steps_loop else "own-thread",
        )
        return self._wait_and_stop()

    def _prepare(self) -> None:
        settings = self.settings
        state = StepState(self.api.step(settings.flow_id, settings.step_id))
        if self.loaded is None:
            component = load_component(self.root)
            self.loaded = component, load_step(component, settings.function)
        component, step = self.loaded
        on_loop = self.steps_loop.run
        if settings.startup_required:
            run_startup(step, state.cfg(), self.api, settings.flow_id, on_loop=on_loop)
        call_hook(step, "init", state.cfg(), on_loop=on_loop)
        lock = credential_lock(settings)
        self.worker = assemble_worker(
            settings=settings,
            component=component,
            step=step,
            broker=self.broker,
            api=self.api,
            state=state,
            cipher=self.cipher,
            lock=lock,
            steps_loop=self.steps_loop,
        )

    def _report(self, error: BaseException) -> None:
        try:
            report_startup_error(
                Publisher(self.broker, self.settings), self.settings, self.cipher, error
            )
        except Exception as exc:  # noqa: BLE001 - the original failure matters more
            _log.warning("startup_error_not_published", error=str(exc))
        finally:
            self.broker.close()

    def _install_signals(self) -> None:
        def on_signal(number: int, _frame: FrameType | None) -> None:
            name = signal.Signals(number).name
            if self.stop.is_set():
                _log.info("already_stopping", signal=name)
                return
            _log.info("stopping", signal=name)
            self.stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)

    def _wait_and_stop(self) -> int:
        worker = self.worker
        if worker is None:
            raise RuntimeError("the worker was not prepared")
        health = Path(self.settings.health_file)
        while not self.stop.wait(1.0):
            if self.broker.consuming:
                _touch(health)
            if worker.stuck_threads >= STUCK_THREADS_LIMIT:
                _log.error("too_many_stuck_steps", threads=worker.stuck_threads)
                self.fatal = RuntimeError("steps stuck in blocking calls; restarting")
                break
        self.broker.stop_consuming()
        deadline = time.monotonic() + self.settings.shutdown_timeout
        if not worker.wait_idle(self.settings.shutdown_timeout):
            _log.warning(
                "shutdown_deadline_passed",
                seconds=self.settings.shutdown_timeout,
                note="unfinished messages go back to the queue",
            )
        lost = worker.settle_keys(deadline - time.monotonic())
        for unsaved in lost:
            _log.error(
                "keys_not_saved",
                account=unsaved.account,
                fingerprint=unsaved.fingerprint,
                store=self.api.where,
                attempt=unsaved.attempts,
                next="none: the worker is stopping without the platform having them; another "
                "replica sharing the credential lock saves them when it adopts them, "
                "otherwise the credential may need reconnecting",
            )
        self.broker.close()
        self._stop_steps_loop(worker)
        self.api.close()
        _log.info("stopped")
        return EXIT_FAILED if self.fatal is not None or lost else EXIT_OK

    def _stop_steps_loop(self, worker: Worker) -> None:
        steps = self.steps_loop
        try:
            steps.run(worker.http_pool.close(), timeout=5)
        except Exception as exc:  # noqa: BLE001 - closing connections is a courtesy here
            _log.warning("http_pool_not_closed", error=str(exc))
        steps.stop()
