"""AMQP properties between pika's type and the runtime's plain ``Properties``."""

from __future__ import annotations

import pika

from runtime.worker.transport import Properties


def to_pika(properties: Properties) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        headers=properties.headers or None,
        delivery_mode=properties.delivery_mode,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expiration=properties.expiration,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        user_id=properties.user_id,
        app_id=properties.app_id,
    )


def from_pika(properties: pika.BasicProperties) -> Properties:
    return Properties(
        headers=dict(properties.headers or {}),
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        delivery_mode=properties.delivery_mode,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expiration=properties.expiration,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        user_id=properties.user_id,
        app_id=properties.app_id,
    )
