"""Sending pika's queued frames in one ``send()`` instead of one system call per frame.

pika queues every frame (a publish is three, an ack one) and, once the socket is writable,
sends them one system call each; under load that was a quarter of the I/O thread's time.
Joining the small ones first sends the same bytes, in the same order, in far fewer calls.
Only the send loop's input changes; its bookkeeping is pika's own.

The same patch makes every send of pika's take ``SEND_LOCK``: the heartbeat guard
(``heartbeats.py``) writes a heartbeat frame from its own thread while the loop is blocked,
and the lock with an empty send queue is what keeps that frame from landing inside another.

It replaces a private method of pika, so it is installed only by a ``Broker`` (never on
import), only for the pika releases it was checked against, and only while that method
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
"""Held by every send of pika's (while the patch is on) and by the heartbeat guard's."""

_log = get_logger("runtime.worker.amqp")


def coalescing_applies() -> bool:
    """Whether this pika has the private send loop the patch expects (version and shape)."""
    transport = getattr(io_services_utils, "_AsyncTransportBase", None)
    produce = getattr(transport, "_produce", None)
    return (
        pika.__version__.startswith(COALESCING_PIKA_VERSIONS)
        and callable(produce)
        and "_tx_buffers" in getattr(getattr(produce, "__code__", None), "co_names", ())
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
            original(self)

    produce.coalescing = True  # type: ignore[attr-defined]
    transport._produce = produce
    return True
