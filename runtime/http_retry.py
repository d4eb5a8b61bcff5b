"""One request to a platform service, retried on network errors and 5xx with back-off.

The platform API, the result POST of service calls and object storage all retry the same
way (the Node.js sailor's clients do too): client errors (4xx) are answers, not retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

MAX_DELAY = 15.0


@dataclass(frozen=True)
class Attempts:
    response: requests.Response | None
    """The first answer below 500, or None when every attempt failed."""
    problem: str
    """What went wrong with the last failed attempt ("HTTP 503", "ConnectionError")."""


def send(
    http: requests.Session,
    method: str,
    url: str,
    *,
    attempts: int,
    first_delay: float,
    **options: Any,
) -> Attempts:
    problem = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(min(MAX_DELAY, first_delay * 2 ** (attempt - 1)))
        try:
            response = http.request(method, url, **options)
        except requests.RequestException as exc:
            problem = type(exc).__name__
            continue
        if response.status_code >= 500:
            problem = f"HTTP {response.status_code}"
            continue
        return Attempts(response, problem)
    return Attempts(None, problem)
