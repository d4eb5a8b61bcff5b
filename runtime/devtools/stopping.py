"""SIGTERM and SIGINT stop a long-running local command at once, with exit code 0.

A container's first process gets no default action for SIGTERM (the kernel ignores it for
PID 1), so ``docker compose stop`` waited its full 10 s and killed the local platform and the
demo API. ``stops_on_signals`` makes either signal raise ``Stopped`` in the main thread, once:
the command's ``finally`` blocks run (topology removed, servers closed), a second signal
during that clean-up is ignored rather than cutting it short, and the command returns 0.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from types import FrameType
from typing import ParamSpec

P = ParamSpec("P")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A signal asked the command to stop (a BaseException: no ``except Exception`` eats it)."""


def _stop(number: int, frame: FrameType | None) -> None:
    for each in SIGNALS:
        signal.signal(each, signal.SIG_IGN)  # let the clean-up finish
    raise Stopped(signal.Signals(number).name)


def stops_on_signals(command: Callable[P, int]) -> Callable[P, int]:
    """Run ``command`` so that SIGTERM or SIGINT ends it cleanly with exit code 0."""

    @functools.wraps(command)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> int:
        previous = {each: signal.signal(each, _stop) for each in SIGNALS}
        try:
            return command(*args, **kwargs)
        except Stopped:
            return 0
        finally:
            for each, handler in previous.items():
                signal.signal(each, handler)

    return wrapped
