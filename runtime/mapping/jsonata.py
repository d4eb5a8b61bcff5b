"""JSONata expressions in step fields: compiled once, evaluated within bounds.

An expression sees the whole message as its input (``body``, ``headers``, ``passthrough``,
``attachments``), so ``"https://api.x.com/users/" & body.id`` or ``$count(body.items)``.
``$getPassthrough()`` and ``$getFlowVariables()`` are there too, as in the platform's own
components, and ``$moment()``, the platform's Moment.js extension (runtime/mapping/moment.py).

Each evaluation gets its own time and depth budget: ``jsonata-python``'s built-in bounds
start counting when the expression is compiled and are shared by every thread using it, so
they cannot serve an expression compiled once and evaluated for every message.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from jsonata import Jsonata  # type: ignore[import-untyped]
from jsonata.jexception import JException  # type: ignore[import-untyped]

from runtime.errors import InvalidInput
from runtime.mapping.moment import as_json, moment_function

TIME_LIMIT_MS = 2000
"""One evaluation's wall time; mapping a message takes microseconds to milliseconds."""
DEPTH_LIMIT = 400
"""Nested evaluations; what a hand-written mapping needs is a few dozen."""
CACHE_SIZE = 512
_SHOWN = 120
_MOMENT = moment_function()


class ExpressionError(InvalidInput):
    """A JSONata expression in a step field does not compile or failed on this message."""


class Expression:
    """One compiled expression; safe to evaluate from several threads at once."""

    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        try:
            self._compiled = Jsonata(text)
        except JException as exc:
            raise ExpressionError(self._describe("does not compile", exc)) from None
        except RecursionError:
            raise self._error("is nested too deeply to compile") from None
        # The input is a decoded JSON message, valid by construction; the library's check
        # walks all of it on every evaluation (10 ms for a body of 2,000 rows).
        self._compiled.set_validate_input(False)
        self._moments = "$moment" in text

    def evaluate(
        self,
        data: Any,
        flow_variables: dict[str, Any] | None = None,
        passthrough: Any = None,
    ) -> Any:
        budget = _Budget()
        bindings = {
            "__evaluate_entry": budget.enter,
            "__evaluate_exit": budget.leave,
            "getPassthrough": Jsonata.JLambda(lambda: passthrough),
            "getFlowVariables": Jsonata.JLambda(lambda: dict(flow_variables or {})),
            "moment": _MOMENT,
        }
        # $now(), $millis() and higher-order functions read the expression evaluating on
        # this thread from a thread-local the compiling thread set.
        Jsonata.CURRENT.jsonata = self._compiled
        try:
            result = self._compiled.evaluate(data, bindings)
            return as_json(result) if self._moments else result
        except JException as exc:
            raise ExpressionError(self._describe("failed", exc)) from None
        except RecursionError:
            raise self._error("recursed too deeply; make the function tail-recursive") from None
        except Exception as exc:  # noqa: BLE001 - the library raises plain errors from functions
            raise self._error(f"failed: {type(exc).__name__}: {exc}") from None

    def _error(self, what: str) -> ExpressionError:
        return ExpressionError(
            f"field {self.field!r}: the JSONata expression {_shown(self.text)} {what}"
        )

    def _describe(self, what: str, exc: JException) -> str:
        where = f" at character {exc.location}" if exc.location and exc.location > 0 else ""
        return str(self._error(f"{what}{where}: {_reason(exc)} ({exc.error})"))


class _Budget:
    def __init__(self) -> None:
        self.depth = 0
        self.started = time.monotonic()

    def enter(self, _expr: Any, _input: Any, env: Any) -> None:
        if env.is_parallel_call:
            return
        self.depth += 1
        if self.depth > DEPTH_LIMIT:
            raise JException("D1011", -1)
        if (time.monotonic() - self.started) * 1000 > TIME_LIMIT_MS:
            raise JException("D1012", -1, TIME_LIMIT_MS)

    def leave(self, _expr: Any, _input: Any, env: Any, _result: Any) -> None:
        if not env.is_parallel_call:
            self.depth -= 1


_cache: OrderedDict[tuple[str, str], Expression] = OrderedDict()
_cache_lock = threading.Lock()


def compiled(text: str, field: str) -> Expression:
    """The expression for a field's text, compiled on first use and kept (bounded LRU)."""
    key = (field, text)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    expression = Expression(text, field)
    with _cache_lock:
        _cache[key] = expression
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return expression


def _reason(exc: JException) -> str:
    text = str(exc).strip()
    if exc.error == "D1011":
        return "it recursed too deeply; rewrite the function to be tail-recursive"
    if exc.error == "D1012":
        return f"it ran longer than {TIME_LIMIT_MS} ms (an endless loop?)"
    return text.rstrip(".")


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[:_SHOWN] + "…")
