"""What each event of one incoming message becomes on the wire (sailor-protocol.md §2.3, §4).

``Routes`` holds what every message shares (the publisher, the rate limits, the step's state,
the key saver); ``Routes.for_message`` gives the ``EventRouter`` of one message. Routing an
event is a generator (``EventRouter.route``) that yields a ``Wait`` wherever handing it over
has to wait: a rate limit's turn, the window of unconfirmed publishes, a blocking save. A
sync step's thread blocks on each (calling the router); an async step's run awaits them.

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

import asyncio
import contextlib
import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from runtime import metrics
from runtime.errors import StepError
from runtime.log import get_logger
from runtime.step.events import Event, Message, error_payload
from runtime.step.waits import Blocking, Pause, Wait, block_on
from runtime.worker.crypto import MessageCipher
from runtime.worker.headers import ERROR_RESPONSE_HEADER, now_ms, routing_key_override
from runtime.worker.keys import KeySaver
from runtime.worker.lightweight import Bodies, offload, resolve
from runtime.worker.outbox import Outbox
from runtime.worker.publisher import Publisher
from runtime.worker.settings import Settings
from runtime.worker.step_state import StepState, json_copy
from runtime.worker.throttle import Throttle
from runtime.worker.transport import Confirmation, Delivery
from runtime.worker.wire import dumps, encode, error_envelope

_log = get_logger(__name__)


class OutgoingTooLarge(StepError):
    """A message the step emitted is larger than the platform takes (the sailor's text)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"Outgoing message size {size} exceeds limit of {limit}.")


class NoReplyTo(StepError):
    """``httpReply`` from a step whose message came with nowhere to reply to."""

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


class Confirmed:
    """Wait for the broker's confirm of a publish (the outbox records how it ended)."""

    __slots__ = ("confirmation", "timeout")

    def __init__(self, confirmation: Confirmation, timeout: float) -> None:
        self.confirmation = confirmation
        self.timeout = timeout

    def block(self) -> None:
        try:
            self.confirmation.wait(self.timeout)
        except Exception:  # noqa: BLE001, S110 - recorded by the outbox
            pass

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def confirmed(_confirmation: Confirmation) -> None:
            loop.call_soon_threadsafe(_resolve, done)

        self.confirmation.on_done(confirmed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, self.timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Routes:
    """What the events of every message share: built once per worker."""

    def __init__(
        self,
        *,
        settings: Settings,
        cipher: MessageCipher,
        publisher: Publisher,
        state: StepState,
        keys: KeySaver,
        storage: Bodies | None = None,
    ) -> None:
        self.settings = settings
        self.cipher = cipher
        self.publisher = publisher
        self.throttles = Throttles(settings)
        self.state = state
        self.keys = keys
        self.storage = storage

    def for_message(
        self,
        *,
        delivery: Delivery,
        message: Message,
        cfg: dict[str, Any],
        base_headers: dict[str, Any],
        outbox: Outbox,
    ) -> EventRouter:
        return EventRouter(
            self,
            delivery=delivery,
            message=message,
            cfg=cfg,
            base_headers=base_headers,
            outbox=outbox,
        )


class EventRouter:
    """Publishes the events of one incoming message; calling it is the sync ``Handle``."""

    def __init__(
        self,
        routes: Routes,
        *,
        delivery: Delivery,
        message: Message,
        cfg: dict[str, Any],
        base_headers: dict[str, Any],
        outbox: Outbox,
    ) -> None:
        self._routes = routes
        self._settings = routes.settings
        self._delivery = delivery
        self._message = message
        self._cfg = cfg
        self._base = base_headers
        self._outbox = outbox
        passthrough = message.passthrough
        self._original_passthrough = json_copy(passthrough) if passthrough else {}

    def __call__(self, event: Event) -> None:
        block_on(self.route(event))

    def route(self, event: Event) -> Iterator[Wait] | None:
        """Hand the event over: None when nothing is to be done, else the waits of doing it."""
        kind = event.kind
        metrics.emitted(kind)
        if kind == "data":
            return self._data(event.payload)
        if kind == "error":
            return self.error(event.payload)
        if kind == "rebound":
            return self._rebound(event.payload)
        if kind in ("snapshot", "updateSnapshot"):
            return self._snapshot(kind, event.payload)
        if kind == "httpReply":
            return self._http_reply(event.payload)
        if kind == "updateKeys":
            keys, cfg, headers = self._routes.keys, self._cfg, dict(self._base)
            return iter((Blocking(lambda: keys.save(event.payload, cfg, headers)),))
        return None

    def _data(self, data: dict[str, Any]) -> Iterator[Wait]:
        settings = self._settings
        headers = dict(self._base)
        headers["messageId"] = data.get("id") or headers["messageId"]
        headers["end"] = now_ms()
        override, message_headers = routing_key_override(data.get("headers") or {})
        data = {**data, "headers": message_headers}
        if self._routes.state.is_passthrough:
            data["passthrough"] = self._passthrough(data)
        storage = self._routes.storage
        if storage is not None and storage.configured:
            light: list[dict[str, Any]] = []
            yield Blocking(lambda: light.append(self._lightweight(storage, data)))
            data = light[0]
        headers["protocolVersion"] = settings.protocol_version
        body = encode(data, self._routes.cipher, settings.protocol_version)
        self._check_size(body)
        key = override or settings.data_routing_key
        yield from self._send(key, body, headers, self._routes.throttles.data)

    def _lightweight(self, storage: Bodies, data: dict[str, Any]) -> dict[str, Any]:
        """Large bodies to object storage when asked; else no body left behind a reference."""
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

    def error(self, error: dict[str, str]) -> Iterator[Wait]:
        """Publish an error envelope (with the original message as ``errorInput``)."""
        headers = {**self._base, "end": now_ms()}
        body, encrypted_error = error_envelope(error, self._delivery, self._routes.cipher)
        yield from self._send(
            self._settings.error_routing_key, body, headers, self._routes.throttles.error
        )
        reply_to = self._base.get("reply_to")
        if reply_to and not self._settings.no_error_replies:
            yield from self._send(
                reply_to, encrypted_error, {**headers, ERROR_RESPONSE_HEADER: True}
            )

    def error_now(self, error: dict[str, str]) -> None:
        """Publish an error envelope and wait for the broker's confirm (after the step ended)."""
        headers = {**self._base, "end": now_ms()}
        body, _ = error_envelope(error, self._delivery, self._routes.cipher)
        self._routes.publisher.send(self._settings.error_routing_key, body, headers)

    def _rebound(self, reason: dict[str, str]) -> Iterator[Wait]:
        settings = self._settings
        original = self._delivery.properties
        previous = original.headers.get("reboundIteration")
        iteration = previous + 1 if isinstance(previous, int) and previous > 0 else 1
        if iteration > settings.rebound_limit:
            yield from self.error(error_payload(StepError("Rebound limit exceeded")))
            return
        headers = {
            **original.headers,
            "end": now_ms(),
            "reboundReason": reason.get("message"),
            "reboundIteration": iteration,
        }
        expiration = 2 ** (iteration - 1) * settings.rebound_initial_expiration
        properties = replace(original, headers=headers, expiration=str(expiration))
        publisher = self._routes.publisher
        yield from self._track(
            publisher.submit(settings.rebound_routing_key, self._delivery.body, properties)
        )

    def _snapshot(self, kind: str, snapshot: dict[str, Any]) -> Iterator[Wait]:
        headers = {**self._base, "snapshotEvent": kind}
        throttle = None
        state = self._routes.state
        if kind == "snapshot":
            state.replace_snapshot(snapshot)
            throttle = self._routes.throttles.snapshot
        elif "$set" in snapshot:
            _log.warning("update_snapshot_set_unsupported")
            return
        else:
            state.merge_snapshot(snapshot)
        yield from self._send(
            self._settings.snapshot_routing_key, dumps(snapshot), headers, throttle
        )

    def _http_reply(self, reply: dict[str, Any]) -> Iterator[Wait]:
        reply_to = self._base.get("reply_to")
        if not reply_to:
            raise NoReplyTo
        body = encode(reply, self._routes.cipher, 1)
        self._check_size(body)
        yield from self._send(reply_to, body, {**self._base, "protocolVersion": 1})

    def _send(
        self,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any],
        throttle: Throttle | None = None,
    ) -> Iterator[Wait]:
        if throttle is not None:
            delay = throttle.turn()
            if delay > 0:
                yield Pause(delay)
        publisher = self._routes.publisher
        yield from self._track(publisher.submit(routing_key, body, publisher.properties(headers)))

    def _track(self, confirmation: Confirmation) -> Iterator[Wait]:
        self._outbox.track(confirmation)
        while (oldest := self._outbox.backlog()) is not None:
            yield Confirmed(oldest, self._settings.publish_timeout)

    def _check_size(self, body: bytes) -> None:
        limit = self._settings.outgoing_message_size_limit
        if len(body) > limit:
            raise OutgoingTooLarge(len(body), limit)
