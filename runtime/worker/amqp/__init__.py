"""The broker: the only package that talks AMQP (pika).

``broker`` drives the two connections on one I/O loop (``io``: their own thread, or the
worker's steps loop); ``consumer`` is the read side, ``publishing`` the confirming write
side, ``policy`` how hard they try, ``heartbeats`` keeps them alive while that loop is
blocked, ``frames`` a send optimisation of pika's, ``convert`` the properties, ``admin`` a
blocking client for the local platform and the tests, ``relay`` the local platform's
exactly-once forwarding (publishes and acks in one transaction).
"""

from runtime.worker.amqp.admin import AdminClient, broker_reachable
from runtime.worker.amqp.broker import Broker
from runtime.worker.amqp.frames import coalescing_applies
from runtime.worker.amqp.io import OnAsyncioLoop, OwnThread
from runtime.worker.amqp.policy import PublishRetry, Reconnect, Recovery
from runtime.worker.amqp.relay import Forward, Relay

__all__ = [
    "AdminClient",
    "Broker",
    "Forward",
    "OnAsyncioLoop",
    "OwnThread",
    "PublishRetry",
    "Reconnect",
    "Recovery",
    "Relay",
    "broker_reachable",
    "coalescing_applies",
]
