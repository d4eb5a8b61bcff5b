"""Sessions for the platform's services, retried by urllib3 only where a retry is safe.

The platform API, the result of service calls and object storage retry the same way, as the
Node.js sailor's clients do: a failure to connect (nothing was sent) is retried for any
method; server errors (500, 502, 503, 504) and answers that broke off are retried only for
idempotent methods, because a POST whose answer was lost may have created something already
(an object in object storage, a flow's startup data), and sending it again would create it
twice. ``Retry-After`` is honoured. Client errors (4xx) are answers, never retried.
Callers bound each whole call, retries included, with ``runtime.deadlines.deadline``.
"""

from __future__ import annotations

import requests
from urllib3.util.retry import Retry

from runtime.deadlines import adapter as watched_adapter

MAX_DELAY = 15.0
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SERVER_ERRORS = frozenset({500, 502, 503, 504})


def platform_session(
    *, attempts: int, first_delay: float, also_retry: frozenset[str] = frozenset()
) -> requests.Session:
    """A session whose requests are tried up to ``attempts`` times with exponential back-off.

    Args:
        attempts: tries per request (the first included).
        first_delay: seconds before the second retry; each later one waits twice as long.
        also_retry: methods that are safe to send again here although HTTP does not say so
            (posting a service call's result twice changes nothing).
    """
    retries = max(0, attempts - 1)
    policy = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=IDEMPOTENT | also_retry,
        status_forcelist=SERVER_ERRORS,
        backoff_factor=first_delay,
        backoff_max=MAX_DELAY,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    session = requests.Session()
    adapter = watched_adapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
