from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SAMPLE


@pytest.fixture
def sample_component() -> Path:
    return SAMPLE


@pytest.fixture(autouse=True)
def _forget_secrets():
    from runtime.redact import SECRETS

    yield
    SECRETS.clear()
