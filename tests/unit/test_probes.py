"""The probes' verdicts for each state of the worker, without a broker."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from runtime.worker.run import worker_probes


def run_state(
    *, started=True, quiet=0.0, consuming=True, publishing=True, worker=True, blocked=0.0,
    on_steps_loop=True,
):  # fmt: skip
    """``quiet``: seconds since the broker's loop last turned (the fake answers as
    ``Broker.loop_alive`` does, from the silence the probe allows)."""
    broker = SimpleNamespace(
        loop_alive=lambda max_silence: quiet < max_silence,
        consuming=consuming,
        publishing=publishing,
    )
    return SimpleNamespace(
        broker=broker,
        broker_started=started,
        stop=threading.Event(),
        worker=object() if worker else None,
        steps_loop=SimpleNamespace(blocked_for=blocked),
        settings=SimpleNamespace(message_timeout=60.0),
        broker_on_steps_loop=on_steps_loop,
    )


def test_a_loop_that_stopped_turning_fails_liveness_only_once_started():
    assert worker_probes(run_state(started=False, quiet=1e6)).live() is None
    problem = worker_probes(run_state(quiet=1e6)).live()
    assert problem == "the AMQP I/O loop is not turning; restart the worker"


def test_a_broker_on_its_own_thread_may_be_quiet_ten_seconds():
    assert worker_probes(run_state(on_steps_loop=False, quiet=9.0)).live() is None
    problem = worker_probes(run_state(on_steps_loop=False, quiet=11.0)).live()
    assert problem == "the AMQP I/O loop is not turning; restart the worker"


def test_a_broker_on_the_steps_loop_may_be_held_up_by_a_step_up_to_its_time_limit():
    # The message time limit is 60 s: a step holding the loop 65 s is still within it + 10.
    assert worker_probes(run_state(quiet=65.0, blocked=0.0)).live() is None
    problem = worker_probes(run_state(quiet=71.0, blocked=0.0)).live()
    assert problem == "the AMQP I/O loop is not turning; restart the worker"


def test_a_step_blocking_the_loop_fails_liveness_only_past_a_messages_time_limit():
    assert worker_probes(run_state(blocked=59.0)).live() is None
    problem = worker_probes(run_state(blocked=61.0)).live()
    assert problem is not None and "blocked the steps' event loop for 61 s" in problem


def test_readiness_names_what_is_missing():
    assert worker_probes(run_state()).ready() is None
    assert worker_probes(run_state(worker=False)).ready() == "starting"
    assert "being reopened" in worker_probes(run_state(consuming=False)).ready()
    assert "publishing channel" in worker_probes(run_state(publishing=False)).ready()
    stopping = run_state()
    stopping.stop.set()
    assert worker_probes(stopping).ready() == "stopping"
