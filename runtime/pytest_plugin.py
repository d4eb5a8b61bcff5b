"""Fixtures for a component's tests; pytest loads them by itself once this runtime is installed.

::

    def test_get_record(run_step, oauth2_provider):
        result = run_step("getRecord", msg={"id": 3}, cfg=oauth2_provider.credentials())
        assert result.kinds == ["data", "end"]

    def test_an_expired_token_is_refreshed_once(run_step, oauth2_provider):
        cfg = oauth2_provider.credentials()
        oauth2_provider.expire_tokens()
        result = run_step("getRecord", msg={"id": 3}, cfg=cfg)
        assert oauth2_provider.token_calls == 1
        assert result.updated_keys[0]["refreshToken"] != cfg["refreshToken"]

``run_step`` runs a trigger or action of the component under test (the folder of pytest's
rootdir when it holds component.json, else the working folder; override the
``component_dir`` fixture to choose) and returns a ``StepResult``. ``oauth2_provider`` is
a real OAuth2 provider and paginated REST API on 127.0.0.1: short-lived access tokens,
refresh tokens that rotate, and reuse detection (a refresh token presented twice revokes
the grant), so a component's 401 and refresh paths are tested against what SaaS
providers do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.auth.cache import CACHE
from runtime.testing import Event, run_step_outcome, run_verify


@dataclass(frozen=True)
class StepResult:
    """What one run of a step emitted, in order."""

    events: list[Event]

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def payloads(self, kind: str) -> list[Any]:
        return [event.payload for event in self.events if event.kind == kind]

    @property
    def data(self) -> list[dict[str, Any]]:
        """The ``data`` messages, each ``{"body": ..., ...}``."""
        return self.payloads("data")

    @property
    def bodies(self) -> list[Any]:
        return [message.get("body") for message in self.data]

    @property
    def errors(self) -> list[dict[str, str]]:
        """The ``error`` events, each ``{"name", "message", "stack"}``."""
        return self.payloads("error")

    @property
    def snapshot(self) -> Any:
        """The last snapshot emitted, or None."""
        snapshots = self.payloads("snapshot")
        return snapshots[-1] if snapshots else None

    @property
    def updated_keys(self) -> list[dict[str, Any]]:
        """The credential's keys saved after each token refresh."""
        return self.payloads("updateKeys")


class StepRunner:
    """Runs the component's triggers and actions, and its verifyCredentials."""

    def __init__(self, component: Path) -> None:
        self.component = component

    def __call__(
        self,
        name: str,
        *,
        msg: Any = None,
        cfg: Mapping[str, Any] | None = None,
        snapshot: Mapping[str, Any] | None = None,
        timeout: float | None = 60.0,
    ) -> StepResult:
        events, _ = run_step_outcome(
            name, msg=msg, cfg=cfg, snapshot=snapshot, component=self.component, timeout=timeout
        )
        return StepResult(events)

    def verify(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """verifyCredentials' verdict, ``{"verified": bool, ...}``."""
        verdict, _ = run_verify(cfg, component=self.component)
        return verdict


class OAuth2Provider:
    """The demo OAuth2 provider and API, served on 127.0.0.1 for one test."""

    def __init__(self, access_lifetime: float = 30.0, token_delay: float = 0.0) -> None:
        from runtime.devtools.demo.api import DemoApi
        from runtime.devtools.demo.tokens import ProviderSettings

        settings = ProviderSettings(access_lifetime=access_lifetime, token_delay=token_delay)
        self._api = DemoApi(settings).start()

    @property
    def url(self) -> str:
        return self._api.url

    @property
    def base_url(self) -> str:
        """The API: ``/me``, ``/records`` (paginated, ``?since=``), ``/records/{id}``."""
        return f"{self._api.url}/api"

    @property
    def token_url(self) -> str:
        return f"{self._api.url}/oauth/token"

    def credentials(self, **extra: Any) -> dict[str, Any]:
        """A signed-in credential (a fresh grant), as a step's cfg holds it."""
        return {
            **self._api.credential(),
            "authorizeUrl": f"{self._api.url}/oauth/authorize",
            **extra,
        }

    def expire_tokens(self) -> None:
        """Every access token issued so far now answers 401."""
        self._api.book.expire_all()

    @property
    def token_calls(self) -> int:
        return int(self._api.stats()["token_calls"])

    def stats(self) -> dict[str, Any]:
        """Token calls, refused and reused refresh tokens, revoked grants, API calls."""
        return self._api.stats()

    def refresh_token_alive(self, refresh_token: str) -> bool:
        return bool(self._api.book.refresh_token_alive(refresh_token))

    def stop(self) -> None:
        self._api.stop()


@pytest.fixture
def component_dir(request: pytest.FixtureRequest) -> Path:
    """The component under test; override this fixture to test another folder."""
    root = Path(request.config.rootpath)
    return root if (root / "component.json").is_file() else Path.cwd()


@pytest.fixture
def run_step(component_dir: Path) -> StepRunner:
    CACHE.clear()  # tokens refreshed in an earlier test must not leak into this one
    return StepRunner(component_dir)


@pytest.fixture
def oauth2_provider() -> Iterator[OAuth2Provider]:
    provider = OAuth2Provider()
    yield provider
    provider.stop()
