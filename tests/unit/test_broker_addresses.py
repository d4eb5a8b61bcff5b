"""A cluster's nodes in ELASTICIO_AMQP_URI: parsed, named without passwords, rotated."""

from __future__ import annotations

import uuid

import pytest

from runtime.errors import ConfigError
from runtime.worker.amqp.addresses import Rotation, parameters_of, shown, where
from runtime.worker.amqp.consumer import _delivered_before
from runtime.worker.settings import Settings
from tests.unit.test_worker_core import ENV

NODES = "amqp://u:s3cret@n1:5672/vh, amqp://u:s3cret@n2:5673/vh,amqp://u:s3cret@n3:5674/vh"


def test_a_comma_separated_list_is_one_node_each():
    nodes = parameters_of(NODES)
    assert [where(n) for n in nodes] == ["n1:5672", "n2:5673", "n3:5674"]
    assert {n.virtual_host for n in nodes} == {"vh"}
    assert [where(n) for n in parameters_of("amqp://guest:guest@127.0.0.1:5672/")] == [
        "127.0.0.1:5672"
    ]


def test_each_connection_moves_on_through_the_list_from_its_own_start():
    nodes = parameters_of(NODES)
    read, write = Rotation(nodes, 0), Rotation(nodes, 1)
    assert (where(read.current), where(write.current)) == ("n1:5672", "n2:5673")
    seen = []
    for _ in range(4):
        read.advance()
        seen.append(where(read.current))
    assert seen == ["n2:5673", "n3:5674", "n1:5672", "n2:5673"]
    single = Rotation(parameters_of("amqp://g:g@only:5672/"), 1)
    single.advance()
    assert where(single.current) == "only:5672"


@pytest.mark.parametrize("bad", ["", " , ", "amqp://u:s3cret@n1:notaport/"])
def test_a_bad_list_is_a_clear_error_without_the_password(bad):
    with pytest.raises(ConfigError) as caught:
        parameters_of(bad)
    assert "ELASTICIO_AMQP_URI" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert shown("amqp://u:s3cret@n1:5672/") == "amqp://***@n1:5672/"


def test_every_nodes_password_is_kept_out_of_logs():
    from runtime.redact import redact

    # Passwords no other test can have registered with the process's secrets: the lines are
    # redacted because reading these settings registered them, and for no other reason.
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    line = f"connecting with {first} and {second}"
    assert redact(line) == line
    nodes = f"amqp://u:{first}@n1:5672/vh,amqp://u:{second}@n2:5673/vh"
    Settings.from_env({**ENV, "ELASTICIO_FUNCTION": "work", "ELASTICIO_AMQP_URI": nodes})
    assert first not in redact(line)
    assert second not in redact(line)


@pytest.mark.parametrize(
    ("headers", "before"),
    [({}, False), ({"x-delivery-count": 0}, False), ({"x-delivery-count": 2}, True),
     ({"x-delivery-count": True}, False), ({"x-delivery-count": "3"}, False)],
)  # fmt: skip
def test_a_quorum_queues_delivery_count_marks_a_redelivery(headers, before):
    assert _delivered_before(headers) is before


def test_the_local_platform_hands_the_list_on_and_declares_quorum_queues():
    from runtime.devtools.localplatform import topology
    from runtime.devtools.localplatform.flow import FlowSpec

    flow = FlowSpec.model_validate(
        {"function": "work", "amqpUrl": NODES, "queueType": "quorum", "flowId": "f"}
    )
    assert flow.worker_env("http://127.0.0.1:9")["ELASTICIO_AMQP_URI"] == NODES

    class Recording:
        def __init__(self) -> None:
            self.queues: dict[str, dict | None] = {}

        def declare_exchange(self, name: str) -> None:
            pass

        def declare_queue(self, name: str, arguments: dict | None = None) -> None:
            self.queues[name] = arguments

        def bind(self, queue: str, exchange: str, key: str) -> None:
            pass

    admin = Recording()
    topology.declare(flow, admin)  # type: ignore[arg-type]
    quorum = {name for name, args in admin.queues.items() if args == {"x-queue-type": "quorum"}}
    assert flow.messages_queue in quorum and flow.output_queue("message") in quorum
    assert flow.output_queue("rebound") not in quorum  # it only holds messages for a delay
