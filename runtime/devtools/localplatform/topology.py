"""The queues and exchanges the platform would create for a step, declared locally.

* the publish exchange (direct) every step publishes to;
* the step's queue, bound to it with the step's ``input`` routing key (how the previous
  step's data reaches it);
* one queue per output routing key (data, error, snapshot, keys, reply), for ``tail``;
* with ``queueType: quorum``, the step's queue and the output queues as quorum queues;
* a rebound queue whose messages, when their per-message expiration runs out, dead-letter
  back to the step's queue: rebound delays really happen;
* the platform's own copy of the step's snapshots (``platform:snapshot``), which it keeps
  in its data folder and hands back as the step's snapshot when a worker starts.

The output queues keep at most ``outputLimit`` events when the flow file sets one (the
oldest are dropped): a whole flow's nodes have their data routed on, and nobody may tail.
"""

from __future__ import annotations

from typing import Any

from runtime.devtools.localplatform.flow import FlowSpec
from runtime.worker.amqp import AdminClient

OUTPUTS = ("message", "error", "snapshot", "keys", "reply")


def platform_queue(flow: FlowSpec, kind: str) -> str:
    """A queue the local platform itself reads, beside the one ``tail`` reads."""
    return f"{flow.prefix}:platform:{kind}"


def declare(flow: FlowSpec, admin: AdminClient) -> None:
    exchange = flow.publish_exchange
    kind_of_queue = {"x-queue-type": "quorum"} if flow.queue_type == "quorum" else None
    admin.declare_exchange(exchange)
    admin.declare_queue(flow.messages_queue, arguments=kind_of_queue)
    admin.bind(flow.messages_queue, exchange, flow.routing_key("input"))
    kept: dict[str, Any] = dict(kind_of_queue or {})
    if flow.output_limit is not None:
        kept["x-max-length"] = flow.output_limit
    for kind in OUTPUTS:
        admin.declare_queue(flow.output_queue(kind), arguments=kept or None)
        admin.bind(flow.output_queue(kind), exchange, flow.routing_key(kind))
    admin.declare_queue(platform_queue(flow, "snapshot"), arguments=kind_of_queue)
    admin.bind(platform_queue(flow, "snapshot"), exchange, flow.routing_key("snapshot"))
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
                  platform_queue(flow, "snapshot"), platform_queue(flow, "route"),
                  *(flow.output_queue(kind) for kind in OUTPUTS)):  # fmt: skip
        admin.delete_queue(queue)
