"""The component contract: component.json, loading steps, running them, their ``ctx``.

Nothing here knows of AMQP or of the platform's HTTP API: a step runs the same in the
worker, in ``runtime.testing`` and in ``python -m runtime exec``.
"""
