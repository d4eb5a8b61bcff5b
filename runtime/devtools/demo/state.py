"""The demo provider's memory (runtime.devtools.demo.api serves it): its token book, the
records of its API, and what it counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.devtools.demo.tokens import ProviderSettings, TokenBook

API_KEY = "demo-api-key"
BASIC_USER = ("demo", "demo-password")
TENANTS = [
    {"tenantId": "tenant-1", "tenantName": "Demo Company (UK)"},
    {"tenantId": "tenant-2", "tenantName": "Demo Company (US)"},
]
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_record(number: int) -> dict[str, Any]:
    updated = _EPOCH + timedelta(minutes=number)
    return {
        "id": number,
        "name": f"Record {number}",
        "updated_at": updated.isoformat().replace("+00:00", "Z"),
    }


class DemoState:
    """What the demo provider and API remember: tokens and grants, records, counters."""

    def __init__(self, settings: ProviderSettings | None = None, *, records: int = 25) -> None:
        self.book = TokenBook(settings or ProviderSettings())
        self.records = [make_record(n) for n in range(1, records + 1)]
        self.lock = threading.Lock()
        self.api_calls = 0
        self.unauthorized = 0
        self.limited: dict[str, int] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "token_calls": self.book.token_calls,
            "grants": dict(self.book.grants),
            "reused_refresh_tokens": self.book.reused_refresh_tokens,
            "invalid_grants": self.book.invalid_grants,
            "revoked_grants": self.book.revoked_grants,
            "expiries_met": self.book.expiries_met,
            "api_calls": self.api_calls,
            "unauthorized": self.unauthorized,
        }
