"""A small OAuth2 provider and a protected, paginated REST API on 127.0.0.1.

For local runs and tests: access tokens expire in seconds and refresh tokens rotate, so a
user watches refreshes and ``updateKeys`` happen. ``python -m runtime demo-api`` serves it.

Routes: ``POST /oauth/token``, ``GET /oauth/authorize`` (consents at once and redirects),
``GET /api/me``, ``GET /api/tenants``, ``GET|POST /api/records`` (paginated in five
styles), ``/api/echo``, ``/api/limited`` (429 with ``Retry-After``), ``/api/status/{code}``,
``/api/big``, and ``/_admin/stats|expire|alive|records|settings`` for tests.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from runtime.devtools.demo.routes import handler_for
from runtime.devtools.demo.state import API_KEY, BASIC_USER, TENANTS, DemoState, make_record
from runtime.devtools.demo.tokens import ProviderSettings
from runtime.devtools.jsonhttp import JsonServer
from runtime.devtools.stopping import stops_on_signals

__all__ = ["API_KEY", "BASIC_USER", "TENANTS", "DemoApi", "make_record", "serve"]


class DemoApi(DemoState):
    """The demo provider and API, served on a background thread."""

    def __init__(
        self,
        settings: ProviderSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        records: int = 25,
    ) -> None:
        super().__init__(settings, records=records)
        self.server = JsonServer((host, port), handler_for(self))
        self._thread: threading.Thread | None = None
        if not self.book.settings.instance_url:
            self.book.settings.instance_url = self.url

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> DemoApi:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="demo-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def consented_tokens(self) -> dict[str, Any]:
        """A token set as if a user had just signed in: for tests and the demo's setup."""
        return self.book.consent()

    def credential(self, tokens: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """A credentials-file entry for this provider, signed in (a fresh grant by default)."""
        tokens = tokens or self.consented_tokens()
        return {
            "type": "oauth2",
            "name": "demo",
            "clientId": self.book.settings.client_id,
            "clientSecret": self.book.settings.client_secret,
            "tokenUrl": f"{self.url}/oauth/token",
            "accessToken": tokens["access_token"],
            "refreshToken": tokens["refresh_token"],
            "baseUrl": f"{self.url}/api",
            **extra,
        }


@stops_on_signals
def serve(*, host: str, port: int, access_lifetime: float) -> int:
    """``python -m runtime demo-api``: serve until SIGTERM or Ctrl-C."""
    api = DemoApi(ProviderSettings(access_lifetime=access_lifetime), host=host, port=port)
    api.start()
    sys.stdout.write(f"demo API on {api.url} (client demo-client / demo-secret)\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    finally:
        api.stop()
