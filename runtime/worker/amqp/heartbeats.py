"""Heartbeats for the broker while the loop its connections live on is blocked.

When the connections share the steps' event loop, an async step that blocks it
(``time.sleep``, a sync HTTP call inside ``async def``) also stops pika's heartbeat timer,
and the broker drops a connection it has not heard from for about its heartbeat timeout:
every unacked delivery would be redelivered, and run twice. This guard's thread notices the
loop is late and writes the 8-byte heartbeat frame itself on each plaintext connection,
under ``SEND_LOCK``, which every change to pika's send queue also takes, and never while a
frame is partly sent (``MID_FRAME``: then it sends that frame's rest instead). Frames pika
queued but has not started wait behind the heartbeat. Nothing else crosses threads: deliveries
and confirms wait in the socket until the loop turns again, and are then handled in order.

Over TLS the frame cannot be slipped in beside the TLS session's own writes, so the guard
leaves those connections alone and says so once.

pika offers no public way to write to a connection from another thread while its loop is
blocked, so the guard reads and keeps the private names in ``PIKA_PRIVATES``; a broker runs
without it (and says so) on a pika that lacks any of them. docs/heartbeat-guard.md says why
and which test fails first when pika changes them.
"""

from __future__ import annotations

import inspect
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable

import pika.connection
import pika.frame
from pika.adapters.utils import io_services_utils

from runtime.log import get_logger
from runtime.worker.amqp.frames import MID_FRAME, SEND_LOCK

FRAME = pika.frame.Heartbeat().marshal()
LATE_AFTER = 0.5
"""Seconds past its due tick before the loop counts as blocked."""
CHECK_EVERY = 0.25
FINISH_WITHIN = 5.0
"""Seconds to finish a heartbeat frame the kernel took only part of."""

_log = get_logger(__name__)

PIKA_PRIVATES = (
    "BaseConnection._transport",
    "_AsyncPlaintextTransport._STATE_ACTIVE",
    "_AsyncPlaintextTransport._state",
    "_AsyncPlaintextTransport._sock",
    "_AsyncPlaintextTransport._tx_buffers",
    "_AsyncPlaintextTransport._tx_buffered_byte_count",
)
"""Every private name of pika the guard reads or changes (with frames.py's send patch)."""


def missing_pika_privates() -> list[str]:
    """Those of ``PIKA_PRIVATES`` this pika does not have (set or read where expected)."""
    from pika.adapters import base_connection

    plaintext = getattr(io_services_utils, "_AsyncPlaintextTransport", None)
    if plaintext is None:
        return list(PIKA_PRIVATES)
    used_by_pika = {
        *_names(base_connection.BaseConnection.__init__),
        *_names(getattr(plaintext, "_produce", None)),
        *_names(getattr(plaintext, "_buffer_tx_data", None)),
        *(name for name in dir(plaintext) if name.startswith("_")),
    }
    return [name for name in PIKA_PRIVATES if name.split(".")[1] not in used_by_pika]


def _names(function: object) -> tuple[str, ...]:
    """The attribute and global names pika's own code of a function uses (under the send
    patch, when it is on); none for a non-function."""
    if callable(function):
        function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


class HeartbeatGuard:
    """A daemon thread sending heartbeats for ``connections`` while ``late()`` says the loop
    is more than ``LATE_AFTER`` seconds behind."""

    def __init__(
        self,
        connections: Callable[[], Iterable[pika.connection.Connection | None]],
        late: Callable[[], float],
    ) -> None:
        self._connections = connections
        self._late = late
        self._stopping = threading.Event()
        self._last_sent: dict[int, float] = {}
        self._warned_tls = False
        self.frames_sent = 0
        self._thread = threading.Thread(target=self._watch, name="amqp-heartbeats", daemon=True)

    def start(self) -> HeartbeatGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _watch(self) -> None:
        episode = 0
        while not self._stopping.wait(CHECK_EVERY):
            late = self._late()
            if late <= LATE_AFTER:
                self._last_sent.clear()
                if self.frames_sent > episode:
                    _log.info("heartbeats_sent_while_blocked", frames=self.frames_sent - episode)
                    episode = self.frames_sent
                continue
            for connection in self._connections():
                if connection is not None and connection.is_open:
                    self._beat_if_due(connection)

    def _beat_if_due(self, connection: pika.connection.Connection) -> None:
        timeout = connection.params.heartbeat
        if not isinstance(timeout, int) or timeout <= 0:
            return  # heartbeats are off: the broker drops nobody for silence
        key = id(connection)
        now = time.monotonic()
        if now - self._last_sent.get(key, 0.0) < min(5.0, max(0.25, timeout / 4)):
            return
        transport = getattr(connection, "_transport", None)
        if not isinstance(transport, io_services_utils._AsyncPlaintextTransport):
            if transport is not None and not self._warned_tls:
                self._warned_tls = True
                _log.warning(
                    "heartbeats_paused",
                    note="the event loop is blocked and the connection uses TLS: no heartbeat "
                    "can be sent until it turns again; the broker may drop the connection",
                )
            return
        if send_heartbeat(transport):
            self._last_sent[key] = now
            self.frames_sent += 1


def send_heartbeat(transport: io_services_utils._AsyncPlaintextTransport) -> bool:
    """Send something the broker counts as traffic; True if bytes went out.

    Where pika left a frame partly sent, that frame goes on (its rest is all that may come
    next); otherwise a heartbeat frame goes out ahead of whatever pika has queued, none of
    which has started."""
    with SEND_LOCK:
        if transport._state != transport._STATE_ACTIVE:
            return False
        sock: socket.socket = transport._sock
        if getattr(transport, MID_FRAME, False) and transport._tx_buffers:
            return _send_rest_of_frame(transport, sock)
        try:
            sent = sock.send(FRAME)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return False  # the connection is going: pika sees it on its next read
        rest = FRAME[sent:]
        deadline = time.monotonic() + FINISH_WITHIN
        while rest:  # the kernel took part of it: the frame must be whole before anything else
            if time.monotonic() > deadline:
                # Better a closed stream than a corrupt one: pika reconnects.
                sock.shutdown(socket.SHUT_RDWR)
                return False
            select.select([], [sock], [], 0.1)
            try:
                rest = rest[sock.send(rest) :]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return False
        return True


def _send_rest_of_frame(
    transport: io_services_utils._AsyncPlaintextTransport, sock: socket.socket
) -> bool:
    """Send what the kernel takes of the queue's head, keeping pika's bookkeeping."""
    buffers = transport._tx_buffers
    head = buffers[0]
    try:
        sent = sock.send(head)
    except (BlockingIOError, InterruptedError, OSError):
        return False
    buffers.popleft()
    transport._tx_buffered_byte_count -= sent
    if sent < len(head):
        buffers.appendleft(head[sent:])
        return sent > 0
    setattr(transport, MID_FRAME, False)
    if not buffers:
        # pika's write watcher is on and expects something queued when the loop turns.
        buffers.append(FRAME)
        transport._tx_buffered_byte_count += len(FRAME)
    return True
