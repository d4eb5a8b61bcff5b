"""The worker: the step's queue in, its events out, each delivery settled when safe.

``amqp/`` is the only place that speaks AMQP (pika); the rest decodes messages, runs the
step through ``runtime.step``, routes its events, and decides each delivery's fate
(``settlement``).
"""
