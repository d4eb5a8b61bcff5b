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


@pytest.fixture(autouse=True)
def _reset_logging():
    """Each test starts from structlog's defaults, whatever the previous one configured."""
    import logging

    import structlog

    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@pytest.fixture
def demo_api():
    """The demo OAuth2 provider and API, on a free port of 127.0.0.1."""
    from runtime.demo.api import DemoApi
    from runtime.demo.tokens import ProviderSettings

    api = DemoApi(ProviderSettings(access_lifetime=30)).start()
    yield api
    api.stop()


@pytest.fixture
def auth_cache():
    from runtime.auth.slots import CredentialCache

    return CredentialCache()
