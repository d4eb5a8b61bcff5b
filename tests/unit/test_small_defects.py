"""Regression tests for defects found in review: forked ids, the pika patch, publish retries."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from runtime.ids import new_id
from runtime.step.context import Context
from runtime.worker.amqp import Broker, PublishRetry, Recovery, coalescing_applies
from runtime.worker.amqp import frames as amqp
from runtime.worker.amqp.publishing import Pending, Publishing
from runtime.worker.transport import Confirmation, Properties
from tests.helpers import ROOT


def test_a_forked_child_makes_other_ids_than_its_parent():
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process
        child = os.fork()
    if child == 0:
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(child, 0)
    assert child_id and child_id != new_id()


def test_the_frame_coalescing_patch_fits_this_pika_exactly():
    # If this fails, pika's private send loop changed: re-check the patch in runtime/worker/amqp/
    # against the new release before adding it to COALESCING_PIKA_VERSIONS.
    assert coalescing_applies(), f"pika {amqp.pika.__version__}: the patched method changed"


def test_importing_the_runtime_patches_nothing_a_broker_installs_it():
    probe = (
        "import runtime.worker.amqp, runtime.worker.loop, runtime.worker.run; "
        "from pika.adapters.utils import io_services_utils as m; "
        "print(getattr(m._AsyncTransportBase._produce, 'coalescing', False))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "False"
    make_broker()
    assert amqp.io_services_utils._AsyncTransportBase._produce.coalescing is True


@pytest.fixture(autouse=True)
def _close_brokers():
    yield
    while _BROKERS:
        _BROKERS.pop().close()


_BROKERS: list[Broker] = []


def make_broker(**options) -> Broker:
    broker = Broker("amqp://guest:guest@127.0.0.1:9/", queue=None, prefetch=1, **options)
    _BROKERS.append(broker)
    return broker


def _pending(attempts: int) -> Pending:
    return Pending("x", "rk", b"{}", Properties(), True, Confirmation(), 1e12, attempts=attempts)


def test_publishes_the_broker_refuses_are_retried_as_the_settings_say():
    retry = PublishRetry(delay=0.1, attempts=3, max_delay=0.3)
    assert [retry.wait(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]
    broker = make_broker(recovery=Recovery(publish_retry=retry))
    publishing = Publishing(broker.link, retry)
    again = _pending(attempts=3)
    publishing.send_again_later(again)
    assert not again.confirmation.done  # sent again later
    given_up = _pending(attempts=4)
    publishing.send_again_later(given_up)
    assert "refused the publish 4 times" in str(given_up.confirmation.error)


def test_the_authors_context_has_no_runtime_controls():
    assert not hasattr(Context, "cancel")
    assert not hasattr(Context, "release")
