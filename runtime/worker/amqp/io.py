"""Where the broker's connections do their I/O: a thread of their own, or the steps' loop.

``OwnThread`` runs pika's select loop on a thread named ``amqp-io``. ``OnAsyncioLoop``
runs the connections on an asyncio loop that something else drives (the worker's steps
loop): a delivery, a publish of an async step and its confirm then never cross threads.
Either way the connections' callbacks all run on one thread, ``in_loop()`` says whether
the caller is on it, and ``call_threadsafe`` is how every other thread hands work over.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol

import pika
import pika.connection
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.adapters.select_connection import IOLoop

OnOpen = Callable[[pika.connection.Connection], None]
OnProblem = Callable[[pika.connection.Connection, BaseException], None]


class Timers(Protocol):
    def call_later(self, delay: float, callback: Callable[[], None], /) -> object:
        """Run ``callback`` on the loop after ``delay`` seconds (from the loop's thread)."""
        ...


class Io(Protocol):
    """The loop and thread that the broker's connections live on."""

    @property
    def timers(self) -> Timers: ...

    def start(self) -> None:
        """Make the loop turn (a no-op when something else drives it)."""
        ...

    def stop(self, timeout: float) -> None:
        """Stop a loop of our own, once the connections are closed."""
        ...

    def call_threadsafe(self, callback: Callable[[], None]) -> None: ...

    def call_soon(self, callback: Callable[[], None]) -> None:
        """From the loop's own thread: run ``callback`` once the current callback returns."""
        ...

    def in_loop(self) -> bool: ...

    def alive(self) -> bool: ...

    def connect(
        self,
        parameters: pika.connection.Parameters,
        on_open: OnOpen,
        on_failed: OnProblem,
        on_closed: OnProblem,
    ) -> pika.connection.Connection: ...


class _LoopOnThread:
    """What both kinds share: a loop, the thread that runs it, and pika's adapter for it."""

    _connection_type: type[pika.connection.Connection]

    def __init__(self, loop: Any, thread: threading.Thread) -> None:
        self._loop = loop
        self._timers: Timers = loop
        self._thread = thread

    @property
    def timers(self) -> Timers:
        return self._timers

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def connect(
        self,
        parameters: pika.connection.Parameters,
        on_open: OnOpen,
        on_failed: OnProblem,
        on_closed: OnProblem,
    ) -> pika.connection.Connection:
        return self._connection_type(
            parameters=parameters,
            on_open_callback=on_open,
            on_open_error_callback=on_failed,
            on_close_callback=on_closed,
            custom_ioloop=self._loop,
        )


class OwnThread(_LoopOnThread):
    """pika's select loop on a thread of its own."""

    _connection_type = pika.SelectConnection

    def __init__(self, on_crash: Callable[[BaseException], None]) -> None:
        super().__init__(IOLoop(), threading.Thread(target=self._run, name="amqp-io", daemon=True))
        self._on_crash = on_crash

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._loop.add_callback_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        elif self._thread.ident is None:
            self._loop.close()  # never started: only its wake-up sockets to close

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        self._loop.add_callback_threadsafe(callback)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._loop.call_later(0, callback)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop.start()
        except Exception as exc:  # noqa: BLE001 - the loop must not die silently
            self._on_crash(exc)
        finally:
            self._loop.close()


class OnAsyncioLoop(_LoopOnThread):
    """An asyncio loop that another owner starts, drives and stops (the steps' loop)."""

    _connection_type = AsyncioConnection
    _loop: asyncio.AbstractEventLoop

    def start(self) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the event loop the broker runs on has not been started")

    def stop(self, timeout: float) -> None:
        """The loop belongs to its owner: nothing to stop here."""

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        self._loop.call_soon_threadsafe(callback)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._loop.call_soon(callback)

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._loop.is_closed()
