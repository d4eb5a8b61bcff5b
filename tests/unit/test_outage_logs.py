"""An outage reads as one story told by the runtime: one line a round of attempts while no
node answers, none of pika's own lines unless debugging."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest

from runtime import log
from runtime.errors import TransportError
from runtime.worker.amqp import Broker, Reconnect, Recovery


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def start_against_nothing(level: str) -> list[dict]:
    stream = io.StringIO()
    log.configure(fmt="json", level=level, stream=stream)
    nodes = ",".join(f"amqp://guest:guest@127.0.0.1:{closed_port()}/" for _ in range(2))
    reconnect = Reconnect(first_delay=0.01, startup_attempts=3)
    broker = Broker(nodes, queue=None, prefetch=1, recovery=Recovery(reconnect=reconnect))
    try:
        with pytest.raises(TransportError, match="cannot connect to the broker"):
            broker.start(timeout=30)
    finally:
        broker.close()
    return lines(stream)


def test_no_node_answering_is_one_line_a_round_with_its_count():
    logged = start_against_nothing("info")
    rounds = [e for e in logged if e.get("msg") == "amqp_unreachable"]
    # Two nodes, three rounds at start-up: the third ends in the start-up error itself.
    assert [e["attempts"] for e in rounds] == [2, 4]
    assert all("refused" in e["cause"].lower() or e["cause"] for e in rounds)
    assert {e["role"] for e in rounds} == {"write"}
    assert not [e for e in logged if str(e.get("logger", "")).startswith("pika")]


def test_pikas_own_lines_are_there_when_debugging():
    logged = start_against_nothing("debug")
    from_pika = [e for e in logged if str(e.get("logger", "")).startswith("pika")]
    assert from_pika
    assert {e.get("level") for e in from_pika} <= {"debug"}


def test_pikas_critical_lines_are_never_hidden():
    stream = io.StringIO()
    log.configure(fmt="json", level="info", stream=stream)
    logging.getLogger("pika.connection").critical("the sky fell")
    assert [e["msg"] for e in lines(stream)] == ["the sky fell"]
