"""Sending pika's queued frames in one ``send()`` instead of one system call per frame.

pika queues every frame (a publish is three, an ack one) and, once the socket is writable,
sends them one system call each; under load that was a quarter of the I/O thread's time.
Joining the small ones first sends the same bytes, in the same order, in far fewer calls.
Only the send loop's input changes; its bookkeeping is pika's own.

The same patch puts every change to pika's send queue (queueing a frame, sending) under
``SEND_LOCK`` and notes on the transport whether the head of the queue is the rest of a
frame partly sent (``MID_FRAME``): the heartbeat guard (``heartbeats.py``) writes to the
socket from its own thread while the loop is blocked, and these two are what keep its bytes
from landing inside a frame.

It replaces private methods of pika, so it is installed only by a ``Broker`` (never on
import), only for the pika releases it was checked against, and only while the send loop
still reads ``self._tx_buffers``; otherwise pika sends as it always does.
"""

from __future__ import annotations

import threading
from typing import Any

import pika
from pika.adapters.utils import io_services_utils

from runtime.log import get_logger

COALESCE_LIMIT = 256 * 1024
COALESCING_PIKA_VERSIONS = ("1.3.", "1.4.")
"""pika releases whose private send loop the patch was written against."""

SEND_LOCK = threading.Lock()
"""Held by every change to pika's send queues (while the patch is on) and by the guard."""
MID_FRAME = "_runtime_mid_frame"
"""Transport attribute: True while the head of its send queue is the rest of a frame."""

_log = get_logger(__name__)


def coalescing_applies() -> bool:
    """Whether this pika has the private send loop the patch expects (version and shape)."""
    transport = getattr(io_services_utils, "_AsyncTransportBase", None)
    produce = getattr(transport, "_produce", None)
    return (
        pika.__version__.startswith(COALESCING_PIKA_VERSIONS)
        and callable(produce)
        and "_tx_buffers" in getattr(getattr(produce, "__code__", None), "co_names", ())
        and callable(getattr(transport, "_buffer_tx_data", None))
    ) or bool(getattr(produce, "coalescing", False))


def install_send_patch() -> bool:
    """Install the patch once; True when it is on."""
    if not coalescing_applies():
        _log.warning("frame_coalescing_off", pika=pika.__version__)
        return False
    transport = io_services_utils._AsyncTransportBase
    original = transport._produce
    if getattr(original, "coalescing", False):
        return True
    original_buffer = transport._buffer_tx_data

    def produce(self: Any) -> None:
        buffers = self._tx_buffers
        with SEND_LOCK:
            if len(buffers) > 1:
                joined: list[bytes] = []
                size = 0
                while buffers and size < COALESCE_LIMIT:
                    chunk = buffers.popleft()
                    joined.append(chunk)
                    size += len(chunk)
                buffers.appendleft(b"".join(joined))
            sizes = [len(chunk) for chunk in buffers]
            before = self._tx_buffered_byte_count
            try:
                original(self)
            finally:
                sent = before - self._tx_buffered_byte_count
                if sent:
                    setattr(self, MID_FRAME, ends_mid_chunk(sent, sizes))

    def buffer(self: Any, data: bytes) -> None:
        with SEND_LOCK:
            original_buffer(self, data)

    produce.coalescing = True  # type: ignore[attr-defined]
    # What pika's own code reads stays findable (heartbeats.missing_pika_privates).
    produce.__wrapped__ = original  # type: ignore[attr-defined]
    buffer.__wrapped__ = original_buffer  # type: ignore[attr-defined]
    transport._produce = produce
    transport._buffer_tx_data = buffer
    return True


def ends_mid_chunk(sent: int, sizes: list[int]) -> bool:
    """Whether ``sent`` bytes from the front of chunks of ``sizes`` stop inside one. Each
    chunk ends where a frame ends, so a send that stops between chunks stops between
    frames."""
    total = 0
    for size in sizes:
        total += size
        if sent <= total:
            return sent < total
    return False
