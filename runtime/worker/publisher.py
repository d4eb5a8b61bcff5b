"""Publishing to the platform's exchange with the sailor's properties, and waiting for confirms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.ids import new_id
from runtime.worker.settings import Settings
from runtime.worker.transport import BrokerPort, Confirmation, Properties


class Publisher:
    def __init__(self, broker: BrokerPort, settings: Settings) -> None:
        self._broker = broker
        self._settings = settings
        self._exchange = settings.publish_messages_to
        self._delivery_mode = 2 if settings.amqp_persistent_messages else 1

    def properties(self, headers: dict[str, Any]) -> Properties:
        """The sailor's properties: JSON, utf8, a ``messageId`` header, nothing else."""
        if not headers.get("messageId"):
            headers = {**headers, "messageId": new_id()}
        return Properties(
            headers=headers,
            content_type="application/json",
            content_encoding="utf8",
            delivery_mode=self._delivery_mode,
        )

    def send(
        self,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any],
        *,
        throttle: Callable[[], None] | None = None,
    ) -> None:
        """Publish with the platform's properties; returns once the broker confirmed."""
        confirmation = self.submit(routing_key, body, self.properties(headers), throttle=throttle)
        confirmation.wait(self._settings.publish_timeout + 1)

    def submit(
        self,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        throttle: Callable[[], None] | None = None,
    ) -> Confirmation:
        """Hand a publish to the broker; the confirmation completes when the broker confirms."""
        if throttle is not None:
            throttle()
        return self._broker.publish(
            self._exchange, routing_key, body, properties, timeout=self._settings.publish_timeout
        )
