"""The queues and exchanges the platform would create for a step, declared locally.

* the publish exchange (direct) every step publishes to;
* the step's queue, bound to it with the step's ``input`` routing key (how the previous
  step's data reaches it);
* one queue per output routing key (data, error, snapshot, keys, reply), for ``tail``;
* with ``queueType: quorum``, the step's queue and the output queues as quorum queues;
* a rebound queue whose messages, when their per-message expiration runs out, dead-letter
  back to the step's queue: rebound delays really happen.
"""

from __future__ import annotations

from runtime.devtools.localplatform.flow import FlowSpec
from runtime.worker.amqp import AdminClient

OUTPUTS = ("message", "error", "snapshot", "keys", "reply")


def declare(flow: FlowSpec, admin: AdminClient) -> None:
    exchange = flow.publish_exchange
    kind_of_queue = {"x-queue-type": "quorum"} if flow.queue_type == "quorum" else None
    admin.declare_exchange(exchange)
    admin.declare_queue(flow.messages_queue, arguments=kind_of_queue)
    admin.bind(flow.messages_queue, exchange, flow.routing_key("input"))
    for kind in OUTPUTS:
        admin.declare_queue(flow.output_queue(kind), arguments=kind_of_queue)
        admin.bind(flow.output_queue(kind), exchange, flow.routing_key(kind))
    rebound = flow.output_queue("rebound")
    admin.declare_queue(
        rebound,
        arguments={
            "x-dead-letter-exchange": exchange,
            "x-dead-letter-routing-key": flow.routing_key("input"),
        },
    )
    admin.bind(rebound, exchange, flow.routing_key("rebound"))


def remove(flow: FlowSpec, admin: AdminClient) -> None:
    for queue in (flow.messages_queue, flow.output_queue("rebound"),
                  *(flow.output_queue(kind) for kind in OUTPUTS)):  # fmt: skip
        admin.delete_queue(queue)
