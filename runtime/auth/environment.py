"""The proxy settings of the process environment, looked up once per host.

``requests`` walks the whole environment (and stats ``~/.netrc``) on every request; for a
step making hundreds of calls a second that is a tenth of its CPU. For the sync session
the proxy variables are read on every call still, so a change takes effect at once, but
the lookup they feed is remembered per host and value. The async session, which makes a
busy worker's hundreds of calls a second on one thread, decides once per origin and
process (``proxy_for``): a worker's environment is set when its container starts.
"""

from __future__ import annotations

import functools
import os
from urllib.parse import urlsplit

from requests.utils import get_environ_proxies

_VARIABLES = tuple(
    name
    for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)


def environment_proxies(url: str, no_proxy: str | None = None) -> dict[str, str]:
    """What ``requests`` would take from the environment for ``url``."""
    parts = urlsplit(url)
    values = tuple(os.environ.get(name) for name in _VARIABLES)
    return dict(_lookup(f"{parts.scheme}://{parts.netloc}", no_proxy, values))


def environment_proxy(scheme: str, netloc: str) -> str | None:
    """The one proxy ``requests`` would use for a request to ``scheme://netloc``, if any."""
    values = tuple(os.environ.get(name) for name in _VARIABLES)
    found = _lookup(f"{scheme}://{netloc}", None, values)
    return next((proxy for key, proxy in found if key == scheme), None)


_DECIDED: dict[str, str | None] = {}
_DECIDED_LIMIT = 512


def proxy_for(url: str) -> str | None:
    """The proxy a request to ``url`` goes through, if any: decided once per origin for
    the life of the process (see the module's docstring)."""
    start = url.find("//") + 2
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, start)
        if 0 <= found < end:
            end = found
    origin = url[:end]
    try:
        return _DECIDED[origin]
    except KeyError:
        pass
    if len(_DECIDED) >= _DECIDED_LIMIT:
        _DECIDED.clear()
    parts = urlsplit(origin)
    proxy = _DECIDED[origin] = environment_proxy(parts.scheme, parts.netloc)
    return proxy


def ca_bundle() -> str | None:
    """The CA bundle the environment names, as ``requests`` reads it."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


@functools.lru_cache(maxsize=512)
def _lookup(
    origin: str, no_proxy: str | None, _values: tuple[str | None, ...]
) -> tuple[tuple[str, str], ...]:
    return tuple(get_environ_proxies(origin, no_proxy=no_proxy).items())
