"""The broker's addresses: ``ELASTICIO_AMQP_URI`` names one node, or several, comma-separated.

A cluster's nodes are listed in one variable, each a whole URL
(``amqp://u:p@node1:5672/vhost,amqp://u:p@node2:5672/vhost``); a comma inside a password
must be written ``%2C``, as any reserved character in a URL. Each of the worker's two
connections keeps its own place in the list and moves to the next node after a failure to
connect or a lost connection, so they fail over independently. The read connection starts
at the first node and the write connection at the second: one node lost costs at most one
of them.
"""

from __future__ import annotations

import pika

from runtime.errors import ConfigError


def split(urls: str) -> list[str]:
    return [url.strip() for url in urls.split(",") if url.strip()]


def parameters_of(urls: str) -> list[pika.URLParameters]:
    """One ``URLParameters`` per address.

    Raises:
        ConfigError: no address, or one pika cannot read (named without its password).
    """
    found = split(urls)
    if not found:
        raise ConfigError("ELASTICIO_AMQP_URI is empty: give the broker's amqp:// URL")
    parsed = []
    for url in found:
        try:
            parsed.append(pika.URLParameters(url))
        except Exception as exc:  # noqa: BLE001 - pika raises several types for bad URLs
            raise ConfigError(
                f"ELASTICIO_AMQP_URI: {shown(url)!r} is not an amqp:// URL ({type(exc).__name__})"
            ) from None
    return parsed


def where(parameters: pika.connection.Parameters) -> str:
    return f"{parameters.host}:{parameters.port}"


def shown(url: str) -> str:
    """A URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


class Rotation:
    """One connection's place in the list of nodes."""

    def __init__(self, nodes: list[pika.URLParameters], start: int) -> None:
        self._nodes = nodes
        self._index = start % len(nodes)

    @property
    def current(self) -> pika.URLParameters:
        return self._nodes[self._index]

    def advance(self) -> None:
        self._index = (self._index + 1) % len(self._nodes)
