"""A deadline on a whole HTTP exchange, kept while the server trickles its answer.

``requests`` only bounds each socket read: a server that sends one byte a second never
trips a read timeout, and a client reading a large body waits as long as the server likes.
Here a deadline covers the whole exchange, connecting, the headers and the body alike::

    with deadline(30, too_slow=lambda: TooSlow("the token endpoint at HOST ...")):
        response = session.post(url, stream=True)   # sockets of this thread are watched
        body = bounded.read(response, ...)          # (sessions built with ``adapter()``)

At the deadline, the watchdog thread shuts down every socket the exchange used, so a read
blocked in the kernel returns at once; whatever the interrupted call raises then becomes
``too_slow()``, an error naming the server (as does a block that ends normally after its
deadline: a body read until the server closes looks whole once its socket is cut).

Sockets come to an exchange in two ways: a session mounted with ``adapter()`` registers
each connection it sends on with the calling thread's open exchanges, and
``Exchange.watch`` adds one by hand (a streamed response's).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from runtime.watchdog import WATCHDOG

_open = threading.local()


class Exchange:
    """The sockets one thread's exchange uses, and whether its time ran out."""

    __slots__ = ("_lock", "_sockets", "expired")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False

    def watch(self, sock: socket.socket | None) -> None:
        """Cut ``sock`` at the deadline (at once when it has already passed)."""
        if sock is None:
            return
        with self._lock:
            if not self.expired:
                if sock not in self._sockets:
                    self._sockets.append(sock)
                return
        _cut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _cut(sock)


@contextlib.contextmanager
def deadline(seconds: float | None, *, too_slow: Callable[[], Exception]) -> Iterator[Exchange]:
    """Bound the block's HTTP exchanges to ``seconds`` in all; None bounds nothing.

    Raises:
        Exception: ``too_slow()`` when the block failed after its deadline had passed.
    """
    exchange = Exchange()
    if seconds is None:
        yield exchange
        return
    stack = _stack()
    stack.append(exchange)
    timer = WATCHDOG.arm(max(0.0, seconds), exchange.expire)
    try:
        yield exchange
    except Exception:
        if exchange.expired:
            raise too_slow() from None
        raise
    else:
        # A body read until the server closes looks complete when its socket was cut.
        if exchange.expired:
            raise too_slow()
    finally:
        timer.cancel()
        stack.remove(exchange)


def socket_of(response: Any) -> socket.socket | None:
    """The socket a streamed ``requests`` response is read from, while it is open."""
    connection = getattr(getattr(response, "raw", None), "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def adapter(**options: Any) -> HTTPAdapter:
    """An ``HTTPAdapter`` whose connections are watched by the sending thread's deadlines."""
    return _WatchedAdapter(**options)


def _stack() -> list[Exchange]:
    stack: list[Exchange] | None = getattr(_open, "stack", None)
    if stack is None:
        stack = _open.stack = []
    return stack


def _register(sock: socket.socket | None) -> None:
    stack: list[Exchange] | None = getattr(_open, "stack", None)
    if stack and sock is not None:
        for exchange in stack:
            exchange.watch(sock)


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS: ssl.SSLSocket.shutdown would unwrap the
    # TLS object under the feet of the thread reading from it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)  # a kept-alive connection does not connect again
        super().request(*args, **kwargs)


class _WatchedTlsConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _Pool, "https": _TlsPool}


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme") and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager
