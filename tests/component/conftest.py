"""What the connector's component tests share: a fresh credential cache for each test, the
local platform's object store as the attachment storage, and its secrets API."""

from __future__ import annotations

import json

import pytest

from runtime.auth.cache import CACHE
from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.localplatform.api_server import PlatformApiServer
from runtime.devtools.localplatform.object_store import ObjectStore
from runtime.devtools.localplatform.secrets import FileSecrets
from tests.component.rest_servers import STORE_TOKEN, answers


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


@pytest.fixture
def platform(tmp_path, demo_api, monkeypatch):
    """The local platform's secrets API, holding an OAuth2, a basic and an API-key secret,
    one without auth, and an OAuth2 secret that never got its access token."""
    store = CredentialsFile(tmp_path / "credentials.json")
    store.path.write_text(
        json.dumps(
            {
                "demo": demo_api.credential(),
                "basic": {"type": "basic", "username": "demo", "password": "demo-password"},
                "apikey": {"type": "api_key", "keyName": "X-API-Key", "key": "demo-api-key"},
                "open": {"type": "none"},
                "no-access": {
                    "type": "oauth2",
                    "clientId": "app",
                    "clientSecret": "s",
                    "tokenUrl": f"{demo_api.url}/oauth/token",
                },
            }
        )
    )
    server = PlatformApiServer(username="task-user", password="task-key").start()
    secrets = FileSecrets(store)
    server.state.secrets = secrets
    monkeypatch.setenv("ELASTICIO_API_URI", server.url)
    monkeypatch.setenv("ELASTICIO_API_USERNAME", "task-user")
    monkeypatch.setenv("ELASTICIO_API_KEY", "task-key")
    monkeypatch.setenv("ELASTICIO_WORKSPACE_ID", "ws-1")
    server.secrets = secrets  # type: ignore[attr-defined]
    server.secrets_file = store.path  # type: ignore[attr-defined]
    server.api = demo_api  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def server(platform):
    """Odd answers, called with the platform's 'open' (noauth) secret."""
    with answers() as running:
        yield running
