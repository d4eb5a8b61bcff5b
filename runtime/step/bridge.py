"""The one way to run async code to its end from sync code, outside the worker's loop.

The worker runs ``async def`` steps on its one long-lived loop (runtime.step.event_loop).
Everything else that meets a coroutine in sync code (a sync step returning one, a service
call such as ``verifyCredentials`` written as ``async def``, ``exec`` and the test helpers
running an async step) runs it here, on an event loop made for the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


def run_to_end(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on an event loop of its own and return what it returns.

    Raises:
        RuntimeError: called on a thread whose event loop is running: await it there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        "async code was run to its end from inside a running event loop; await it instead"
    )
