"""What each event of one incoming message becomes on the wire (sailor-protocol.md §2.3, §4).

============  ==============================================  ===============================
event         routing key                                     body
============  ==============================================  ===============================
data          ``x-eio-routing-key`` of the message, else      encrypted, protocol 1 or 2
              ELASTICIO_DATA_ROUTING_KEY
error         ELASTICIO_ERROR_ROUTING_KEY (+ copy to          JSON envelope {error,
              ``reply_to`` unless NO_ERROR_REPLIES)           errorInput}
rebound       ELASTICIO_REBOUND_ROUTING_KEY                   the original bytes, expiration
                                                              doubling per iteration
snapshot,     ELASTICIO_SNAPSHOT_ROUTING_KEY                  plain JSON
updateSnapshot
httpReply     the incoming ``reply_to`` header                encrypted, always protocol 1
updateKeys    see runtime.worker.keys                                —
end           —                                               —
============  ==============================================  ===============================
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from runtime import metrics
from runtime.errors import StepError
from runtime.log import get_logger
from runtime.step.events import Event, Message, error_payload
from runtime.worker.crypto import MessageCipher
from runtime.worker.headers import ERROR_RESPONSE_HEADER, now_ms, routing_key_override
from runtime.worker.keys import KeySaver
from runtime.worker.lightweight import Bodies, offload, resolve
from runtime.worker.outbox import Outbox
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.step_state import StepState
from runtime.worker.throttle import Throttle
from runtime.worker.transport import Delivery
from runtime.worker.wire import dumps, encode, error_envelope

_log = get_logger("runtime.worker.dispatch")


class OutgoingTooLarge(StepError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"Outgoing message size {size} exceeds limit of {limit}.")


class NoReplyTo(StepError):
    def __init__(self) -> None:
        super().__init__(
            "Component emitted 'httpReply' event but 'reply_to' was not found in AMQP headers"
        )


class Throttles:
    """The sailor's static flow control, one per throttled event type, shared by all messages."""

    def __init__(self, settings: Settings) -> None:
        interval = settings.rate_interval
        self.data = Throttle(settings.data_rate_limit, interval)
        self.error = Throttle(settings.error_rate_limit, interval)
        self.snapshot = Throttle(settings.snapshot_rate_limit, interval)


class EventRouter:
    """Publishes the events of one incoming message; a ``Handle`` for the executor."""

    def __init__(
        self,
        *,
        settings: Settings,
        cipher: MessageCipher,
        publisher: Publisher,
        throttles: Throttles,
        state: StepState,
        keys: KeySaver,
        delivery: Delivery,
        message: Message,
        cfg: dict[str, Any],
        base_headers: dict[str, Any],
        outbox: Outbox,
        storage: Bodies | None = None,
    ) -> None:
        self._settings = settings
        self._cipher = cipher
        self._publisher = publisher
        self._throttles = throttles
        self._state = state
        self._keys = keys
        self._delivery = delivery
        self._message = message
        self._cfg = cfg
        self._base = base_headers
        self._outbox = outbox
        self._storage = storage
        passthrough = message.passthrough
        self._original_passthrough = copy.deepcopy(passthrough) if passthrough else {}

    def __call__(self, event: Event) -> None:
        kind = event.kind
        metrics.emitted(kind)
        if kind == "data":
            self._data(event.payload)
        elif kind == "error":
            self.error(event.payload)
        elif kind == "rebound":
            self._rebound(event.payload)
        elif kind in ("snapshot", "updateSnapshot"):
            self._snapshot(kind, event.payload)
        elif kind == "httpReply":
            self._http_reply(event.payload)
        elif kind == "updateKeys":
            self._keys.save(event.payload, self._cfg, dict(self._base))

    def _data(self, data: dict[str, Any]) -> None:
        settings = self._settings
        headers = dict(self._base)
        headers["messageId"] = data.get("id") or headers["messageId"]
        headers["end"] = now_ms()
        override, message_headers = routing_key_override(data.get("headers") or {})
        data = {**data, "headers": message_headers}
        if self._state.is_passthrough:
            data["passthrough"] = self._passthrough(data)
        data = self._lightweight(data)
        headers["protocolVersion"] = settings.protocol_version
        body = encode(data, self._cipher, settings.protocol_version)
        self._check_size(body)
        self._send(override or settings.data_routing_key, body, headers, self._throttles.data.wait)

    def _lightweight(self, data: dict[str, Any]) -> dict[str, Any]:
        """Large bodies to object storage when asked; else no body left behind a reference."""
        storage = self._storage
        if storage is None or not storage.configured:
            return data
        message_id = str(self._base.get("parentMessageId") or "")
        if self._settings.emit_lightweight_message:
            threshold = self._settings.object_storage_size_threshold
            return offload(storage, data, threshold, message_id)
        if isinstance(data.get("passthrough"), dict):
            data = {**data, "passthrough": copy.deepcopy(data["passthrough"])}
            resolve(storage, {"passthrough": data["passthrough"]}, message_id)
        return data

    def _passthrough(self, data: dict[str, Any]) -> dict[str, Any]:
        passthrough = dict(self._original_passthrough)
        if self._settings.no_self_passtrhough:
            previous = self._delivery.headers.get("stepId")
            if previous:
                passthrough[previous] = {
                    k: v for k, v in self._message.items() if k != "passthrough"
                }
        else:
            passthrough[self._settings.step_id] = {
                k: v for k, v in data.items() if k != "passthrough"
            }
        return passthrough

    def error(self, error: dict[str, str]) -> None:
        """Publish an error envelope (with the original message as ``errorInput``)."""
        headers = {**self._base, "end": now_ms()}
        body, encrypted_error = error_envelope(error, self._delivery, self._cipher)
        self._send(self._settings.error_routing_key, body, headers, self._throttles.error.wait)
        reply_to = self._base.get("reply_to")
        if reply_to and not self._settings.no_error_replies:
            self._send(reply_to, encrypted_error, {**headers, ERROR_RESPONSE_HEADER: True})

    def error_now(self, error: dict[str, str]) -> None:
        """Publish an error envelope and wait for the broker's confirm (after the step ended)."""
        headers = {**self._base, "end": now_ms()}
        body, _ = error_envelope(error, self._delivery, self._cipher)
        self._publisher.send(self._settings.error_routing_key, body, headers)

    def _rebound(self, reason: dict[str, str]) -> None:
        settings = self._settings
        original = self._delivery.properties
        previous = original.headers.get("reboundIteration")
        iteration = previous + 1 if isinstance(previous, int) and previous > 0 else 1
        if iteration > settings.rebound_limit:
            self.error(error_payload(StepError("Rebound limit exceeded")))
            return
        headers = {
            **original.headers,
            "end": now_ms(),
            "reboundReason": reason.get("message"),
            "reboundIteration": iteration,
        }
        expiration = 2 ** (iteration - 1) * settings.rebound_initial_expiration
        properties = replace(original, headers=headers, expiration=str(expiration))
        self._outbox.track(
            self._publisher.submit(settings.rebound_routing_key, self._delivery.body, properties)
        )

    def _snapshot(self, kind: str, snapshot: dict[str, Any]) -> None:
        headers = {**self._base, "snapshotEvent": kind}
        throttle = None
        if kind == "snapshot":
            self._state.replace_snapshot(snapshot)
            throttle = self._throttles.snapshot.wait
        elif "$set" in snapshot:
            _log.warning("update_snapshot_set_unsupported")
            return
        else:
            self._state.merge_snapshot(snapshot)
        self._send(self._settings.snapshot_routing_key, dumps(snapshot), headers, throttle)

    def _http_reply(self, reply: dict[str, Any]) -> None:
        reply_to = self._base.get("reply_to")
        if not reply_to:
            raise NoReplyTo
        body = encode(reply, self._cipher, 1)
        self._check_size(body)
        self._send(reply_to, body, {**self._base, "protocolVersion": 1})

    def _send(
        self,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any],
        throttle: Callable[[], None] | None = None,
    ) -> None:
        properties = self._publisher.properties(headers)
        self._outbox.track(self._publisher.submit(routing_key, body, properties, throttle=throttle))

    def _check_size(self, body: bytes) -> None:
        limit = self._settings.outgoing_message_size_limit
        if len(body) > limit:
            raise OutgoingTooLarge(len(body), limit)
