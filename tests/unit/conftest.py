"""What the worker-core tests share: the ``gated`` step's gate."""

from __future__ import annotations

import sys

import pytest

from runtime.step.loader import load_step
from tests.unit.test_worker_core import COMPONENT


@pytest.fixture
def gated():
    """The ``gated`` step's module: messages wait at its gate until the test opens it."""
    gate = sys.modules[load_step(COMPONENT, "gated").process.__module__].state
    gate.reset()
    yield gate
    gate.gate.set()
