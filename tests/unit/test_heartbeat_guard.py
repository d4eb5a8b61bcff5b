"""The heartbeat guard writes a whole heartbeat frame, and never one inside another frame."""

from __future__ import annotations

import collections
import select
import socket

from runtime.worker.amqp.heartbeats import send_heartbeat


class _Transport:
    """The parts of pika's plaintext transport the guard reads."""

    _STATE_ACTIVE = 1

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._state = self._STATE_ACTIVE
        self._tx_buffers: collections.deque[bytes] = collections.deque()


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.settimeout(1)
    return ours, broker


def test_a_heartbeat_goes_out_whole_when_nothing_waits_to_be_sent():
    ours, broker = _pair()
    with ours, broker:
        assert send_heartbeat(_Transport(ours))  # type: ignore[arg-type]
        received = broker.recv(64)
    # AMQP 0-9-1 §4.2.3: type 8 (heartbeat), channel 0, size 0, frame-end 0xCE.
    assert received == b"\x08\x00\x00\x00\x00\x00\x00\xce"


def test_no_heartbeat_while_pika_has_frames_queued_part_may_be_on_the_wire():
    ours, broker = _pair()
    with ours, broker:
        transport = _Transport(ours)
        transport._tx_buffers.append(b"rest of a frame")
        assert not send_heartbeat(transport)  # type: ignore[arg-type]
        assert not _readable(broker)


def test_no_heartbeat_on_a_transport_that_is_closing():
    ours, broker = _pair()
    with ours, broker:
        transport = _Transport(ours)
        transport._state = 0
        assert not send_heartbeat(transport)  # type: ignore[arg-type]
        assert not _readable(broker)


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])
