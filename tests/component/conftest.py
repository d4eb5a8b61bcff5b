"""What the connector's component tests share: a fresh credential cache for each test, and
the local platform's object store as the attachment storage."""

from __future__ import annotations

import pytest

from runtime.auth.cache import CACHE
from runtime.devtools.localplatform.object_store import ObjectStore
from tests.component.rest_servers import STORE_TOKEN


@pytest.fixture(autouse=True)
def _fresh_credentials():
    CACHE.clear()
    yield
    CACHE.clear()


@pytest.fixture
def store(monkeypatch):
    """The attachment storage the steps are given (ELASTICIO_OBJECT_STORAGE_*)."""
    running = ObjectStore(STORE_TOKEN).start()
    monkeypatch.setenv("ELASTICIO_OBJECT_STORAGE_URI", running.url)
    monkeypatch.setenv("ELASTICIO_OBJECT_STORAGE_TOKEN", STORE_TOKEN)
    yield running
    running.stop()
