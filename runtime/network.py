"""Network failures in words: what an operator reads in a log line or an error event."""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit


def describe_failure(error: BaseException) -> str:
    """Why a request got no answer, in a few words ("connection refused", "timed out")."""
    for cause in _causes(error):
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


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url
