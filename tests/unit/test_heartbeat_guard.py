"""The heartbeat guard sends whole frames only, and never one inside a frame pika started."""

from __future__ import annotations

import collections
import select
import socket

from runtime.worker.amqp.frames import MID_FRAME, ends_mid_chunk, install_send_patch
from runtime.worker.amqp.heartbeats import missing_pika_privates, send_heartbeat

HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"  # AMQP 0-9-1 §4.2.3: type 8, channel 0, size 0


class _Transport:
    """The parts of pika's plaintext transport the guard reads and keeps."""

    _STATE_ACTIVE = 1

    def __init__(self, sock: socket.socket, *queued: bytes) -> None:
        self._sock = sock
        self._state = self._STATE_ACTIVE
        self._tx_buffers: collections.deque[bytes] = collections.deque(queued)
        self._tx_buffered_byte_count = sum(len(chunk) for chunk in queued)


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.settimeout(1)
    return ours, broker


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_a_heartbeat_goes_out_whole_when_nothing_waits_to_be_sent():
    ours, broker = _pair()
    with ours, broker:
        assert send_heartbeat(_Transport(ours))  # type: ignore[arg-type]
        assert broker.recv(64) == HEARTBEAT


def test_frames_pika_queued_but_did_not_start_wait_behind_the_heartbeat():
    ours, broker = _pair()
    with ours, broker:
        transport = _Transport(ours, b"frame-1", b"frame-2")
        assert send_heartbeat(transport)  # type: ignore[arg-type]
        assert broker.recv(64) == HEARTBEAT
        assert list(transport._tx_buffers) == [b"frame-1", b"frame-2"]
        assert transport._tx_buffered_byte_count == 14


def test_a_frame_partly_sent_is_finished_instead_and_pika_still_finds_work_queued():
    ours, broker = _pair()
    with ours, broker:
        transport = _Transport(ours, b"rest of a frame")
        setattr(transport, MID_FRAME, True)
        assert send_heartbeat(transport)  # type: ignore[arg-type]
        assert broker.recv(64) == b"rest of a frame"  # no heartbeat inside it
        assert getattr(transport, MID_FRAME) is False
        # pika's write watcher expects a queued chunk: a heartbeat waits there.
        assert list(transport._tx_buffers) == [HEARTBEAT]
        assert transport._tx_buffered_byte_count == len(HEARTBEAT)


def test_no_heartbeat_on_a_transport_that_is_closing():
    ours, broker = _pair()
    with ours, broker:
        transport = _Transport(ours)
        transport._state = 0
        assert not send_heartbeat(transport)  # type: ignore[arg-type]
        assert not _readable(broker)


def test_a_send_that_stops_between_chunks_stops_between_frames():
    assert ends_mid_chunk(5, [10, 20]) is True
    assert ends_mid_chunk(10, [10, 20]) is False
    assert ends_mid_chunk(29, [10, 20]) is True
    assert ends_mid_chunk(30, [10, 20]) is False


def test_the_private_names_of_pika_the_guard_uses_are_all_there():
    """The one wall built on another library's privates (docs/heartbeat-guard.md lists them):
    this is the test that fails first when a pika release renames or drops one."""
    assert missing_pika_privates() == []
    install_send_patch()  # as every Broker does: pika's own code is still what is read
    assert missing_pika_privates() == []
