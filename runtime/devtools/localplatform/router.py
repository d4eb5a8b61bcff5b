"""Routing between a flow's steps: each node's ``data`` to every successor's queue.

An edge without a mapper is a binding: the successor's queue is bound to the node's data
routing key, and the broker delivers the message as it came, at no cost to any process here
(and with the publishing worker's confirm covering it). An edge with a mapper goes through
the router: one consumer per node that has such edges reads the node's data (a queue of its
own, ``platform:route``, beside the ``out:message`` queue that ``tail`` reads) and publishes,
for each mapped edge, the message decrypted, its ``body`` built by the mapper, encrypted
again, to the target's input routing key. The AMQP headers go on unchanged (the sailor
already set ``threadId``, ``parentMessageId``, ``stepId``, ``reply_to`` and ``x-eio-meta-*``
as the next step reads them); passthrough rides in the message, as the sailors keep it.

A message's forwards are published and the message acked in one AMQP transaction (the
relay of runtime.worker.amqp): a router that dies loses nothing and doubles nothing; the
broker redelivers what it had not committed, which was neither forwarded nor acked. Each
forward's ``messageId`` is derived from the input's and the edge.

A mapper evaluates each field's JSONata over the incoming message's body, with
``$getPassthrough()`` and ``$moment()`` (a whole-body expression: the body is its result).
One that fails is an ``error`` event on the target's error routing key, naming the edge and
the expression, with the message as its ``errorInput``; the message goes to no other edge's
target twice, and is not dropped in silence.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from runtime.devtools.localplatform.flow import FlowSpec
from runtime.devtools.localplatform.graph import Edge, GraphFlow
from runtime.devtools.localplatform.graph_files import mapper_expressions
from runtime.devtools.localplatform.messaging import cipher_for
from runtime.devtools.localplatform.topology import platform_queue
from runtime.log import get_logger
from runtime.mapping.jsonata import ExpressionError, compiled
from runtime.worker.amqp import AdminClient, Forward, Relay
from runtime.worker.transport import Properties
from runtime.worker.wire import BadMessage, decode_value, dumps, encode, protocol_version

_log = get_logger(__name__)
_RETRY_MAX = 10.0


class Mapper:
    """An edge's mapper, compiled once."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.fields = [
            (field, compiled(text, f"{edge.name}: {field}"))
            for field, text in mapper_expressions(edge)
        ]
        self.whole = isinstance(edge.config.mapper, str)
        self.constants = edge.config.mapper if isinstance(edge.config.mapper, dict) else {}

    def body(self, message: dict[str, Any]) -> Any:
        passthrough = message.get("passthrough")
        source = message.get("body")
        if self.whole:
            return self.fields[0][1].evaluate(source, passthrough=passthrough)
        built: dict[str, Any] = {}
        for field, expression in self.fields:
            _put(built, field.split("."), expression.evaluate(source, passthrough=passthrough))
        # non-string leaves (numbers, booleans) are constants
        built.update({k: v for k, v in self.constants.items() if not isinstance(v, (str, dict))})
        return built


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    if value is not None:  # JSONata's "no match" leaves the field out, as on the platform
        target[path[-1]] = value


class Router:
    """The flow's routing service: a thread per node with successors."""

    def __init__(self, flow: GraphFlow, steps: dict[str, FlowSpec] | None = None) -> None:
        self.flow = flow
        self.steps = steps or flow.steps()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mappers = {
            edge.name: Mapper(edge) for edge in flow.graph.edges if edge.config.mapper is not None
        }
        # one per step, not per message: a cipher derives its key when made
        self._ciphers = {node: cipher_for(step) for node, step in self.steps.items()}

    def declare(self) -> Router:
        """The edges without a mapper as bindings, and the router's queues for the others:
        nothing routed is lost between the workers' start and the router's."""
        direct = {
            (e.source, e.target) for e in self.flow.graph.edges if e.name not in self._mappers
        }
        with AdminClient(self.steps[self.flow.first.id].amqp_url, name="router") as admin:
            for source in self.flow.graph.nodes:
                step = self.steps[source.id]
                data_key = step.routing_key("message")
                for target in self.flow.graph.nodes:
                    queue = self.steps[target.id].messages_queue
                    if (source.id, target.id) in direct:
                        admin.bind(queue, step.publish_exchange, data_key)
                    else:  # an edge of an earlier version of the flow file
                        admin.unbind(queue, step.publish_exchange, data_key)
                if self._routed(source.id):
                    arguments = {"x-queue-type": "quorum"} if step.queue_type == "quorum" else None
                    admin.declare_queue(platform_queue(step, "route"), arguments=arguments)
                    admin.bind(platform_queue(step, "route"), step.publish_exchange, data_key)
        return self

    def _routed(self, node_id: str) -> list[Edge]:
        """The node's edges that have a mapper: the ones the router forwards."""
        return [e for e in self.flow.outgoing(node_id) if e.name in self._mappers]

    def start(self) -> Router:
        self.declare()
        for node in self.flow.graph.nodes:
            if self._routed(node.id):
                thread = threading.Thread(
                    target=self._serve, args=(node.id,), name=f"router-{node.id}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _serve(self, node_id: str) -> None:
        """Relay the node's data until stopped; a lost connection is opened again."""
        source = self.steps[node_id]
        relay = Relay(
            source.amqp_url,
            platform_queue(source, "route"),
            lambda body, properties: self.routes(node_id, body, properties),
            name=f"router-{self.flow.id}-{node_id}",
        )
        delay = 0.5
        while not self._stop.is_set():
            try:
                relay.run(self._stop)
                delay = 0.5
                _log.info("router_stopped", node=node_id, messages=relay.committed,
                          transactions=relay.commits)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - the router lives on; the broker redelivers
                _log.warning("router_reconnecting", node=node_id, error=str(exc), delay=delay)
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)

    def routes(self, node_id: str, body: bytes, props: Properties) -> list[Forward]:
        """What one data message of ``node_id`` becomes: a message for each successor (or an
        error event where an edge's mapper failed)."""
        version = protocol_version(props.headers)
        message: dict[str, Any] | None = None
        forwards: list[Forward] = []
        for edge in self._routed(node_id):
            target = self.steps[edge.target]
            mapper = self._mappers[edge.name]
            try:
                if message is None:
                    message = decode_value(body, self._ciphers[node_id], version)
                mapped = {**message, "body": mapper.body(message)}
            except (ExpressionError, BadMessage) as exc:
                forwards += self._error(edge, str(exc), body, props)
                continue
            out = encode(mapped, self._ciphers[edge.target], version)
            headers = {**props.headers, "messageId": _forward_id(props.headers, edge)}
            forwards.append((
                target.publish_exchange,
                target.routing_key("input"),
                out,
                Properties(
                    headers=headers,
                    content_type=props.content_type or "application/json",
                    content_encoding=props.content_encoding or "utf8",
                    delivery_mode=2,
                ),
            ))  # fmt: skip
        return forwards

    def _error(self, edge: Edge, why: str, body: bytes, props: Properties) -> list[Forward]:
        """The error event of an edge whose mapper failed, and its copy to a waiting caller."""
        target = self.steps[edge.target]
        cipher = self._ciphers[edge.target]
        error = {"name": "MapperError", "message": f"edge {edge.name}: {why}", "stack": ""}
        envelope: dict[str, str] = {"error": encode(error, cipher, 1).decode()}
        if protocol_version(props.headers) < 2:
            envelope["errorInput"] = body.decode("ascii", errors="replace")
        headers = {**props.headers, "stepId": edge.target, "x-eio-edge": edge.name}
        forwards: list[Forward] = [(
            target.publish_exchange,
            target.routing_key("error"),
            dumps(envelope),
            Properties(headers=headers, content_type="application/json", delivery_mode=2),
        )]  # fmt: skip
        reply_to = props.headers.get("reply_to")
        if reply_to:  # a request-reply caller hears of it at once, as from a step's error
            forwards.append((
                target.publish_exchange,
                str(reply_to),
                envelope["error"].encode(),
                Properties(headers={**headers, "x-eio-error-response": True}, delivery_mode=2),
            ))  # fmt: skip
        _log.warning("mapper_failed", edge=edge.name, error=why)
        return forwards


def _forward_id(headers: dict[str, Any], edge: Edge) -> str:
    """The same input on the same edge gets the same id: a forward made again after a crash
    is recognisable as the copy it is."""
    incoming = str(headers.get("messageId") or uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{incoming}/{edge.name}"))
