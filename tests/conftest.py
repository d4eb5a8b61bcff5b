from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import SAMPLE

# CI runs the property-based tests with a fixed seed and a bounded count; run them longer
# by hand with HYPOTHESIS_PROFILE=long (random seeds, many more examples).
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "ci", max_examples=300, derandomize=True, database=None, deadline=None,
    suppress_health_check=_SLOW_DATA,
)  # fmt: skip
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=_SLOW_DATA
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs RabbitMQ (or Redis): mark it so, whatever the
    file says, so that ``-m "not integration"`` runs exactly the fast tests."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)


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
    from runtime.devtools.demo.api import DemoApi
    from runtime.devtools.demo.tokens import ProviderSettings

    api = DemoApi(ProviderSettings(access_lifetime=30)).start()
    yield api
    api.stop()


@pytest.fixture
def auth_cache():
    from runtime.auth.cache import CredentialCache

    return CredentialCache()
