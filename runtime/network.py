"""Network failures in words: what an operator reads in a log line or an error event."""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

import requests
import urllib3


class AnswerTooSlow(requests.exceptions.ReadTimeout):
    """A server did not finish its answer within the whole exchange's deadline (it may
    have been sending, a little at a time, all along)."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(
            f"{host} did not finish its answer within {seconds:g} s (too slow; it may be "
            "overloaded or sending a little at a time)"
        )
        self.host = host
        self.seconds = seconds


def describe_failure(error: BaseException) -> str:
    """Why a request got no answer, in a few words ("connection refused", "timed out")."""
    for cause in _causes(error):
        if isinstance(cause, AnswerTooSlow):
            return f"too slow: no whole answer within {cause.seconds:g} s"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        if isinstance(cause, TimeoutError | socket.timeout) or "Timeout" in type(cause).__name__:
            return "timed out"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(cause, ssl.SSLError):
            return "TLS failed"
    return type(error).__name__


def in_words(error: BaseException) -> str | None:
    """A request that got no answer, as one line naming the host and the cause
    ("could not connect to 127.0.0.1:9 (connection refused)"); None for other errors."""
    if not _is_network_failure(error):
        return None
    if isinstance(error, AnswerTooSlow):
        return str(error)
    host = _host(error) or "the server"
    cause = describe_failure(error)
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"{host} did not answer in time (timed out)"
    if cause in ("connection reset", "the server closed the connection without answering"):
        return f"lost the connection to {host} ({cause})"
    return f"could not connect to {host} ({cause})"


def _is_network_failure(error: BaseException) -> bool:
    network = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
               urllib3.exceptions.HTTPError)  # fmt: skip
    if isinstance(error, network):
        return not isinstance(error, requests.exceptions.SSLError | urllib3.exceptions.SSLError)
    return False


def _host(error: BaseException) -> str | None:
    for cause in _causes(error):
        request = getattr(cause, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and url:
            return host_of(url)
        pool = getattr(cause, "pool", None)
        if pool is not None and getattr(pool, "host", None):
            port = getattr(pool, "port", None)
            return f"{pool.host}:{port}" if port else str(pool.host)
    return None


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (urllib3 keeps the socket's error in ``reason``)."""
    found: list[BaseException] = []
    pending: list[object] = [error]
    while pending and len(found) < 20:
        item = pending.pop()
        if not isinstance(item, BaseException) or item in found:
            continue
        found.append(item)
        pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
        pending.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return found


class AnswerOf:
    """Words "the answer of HOST" for an error message, only when one is made: parsing the
    URL for every answer read is a cost each request would pay for nothing."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return f"the answer of {host_of(self.url)}"


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url
