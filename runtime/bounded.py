"""Reading what comes from outside within bounds: size, nesting depth and time.

Everything the runtime parses from a peer it does not control goes through here: message
bodies, the platform API's answers, token endpoint answers, object storage bodies,
``ELASTICIO_CFG`` and credentials files. A value over a bound is refused before it can
exhaust memory or the parser: ``json.loads`` alone would raise ``RecursionError`` (not a
``ValueError``) on a value nested a few thousand levels deep, and a server that never ends
its answer, or trickles it a byte at a time, would hold a thread for ever (the time bound
is a deadline on the whole body, runtime.deadlines).

::

    OutOfBounds (ValueError)   the text says what it was, where from, and which bound
    ├── TooLarge               more bytes than allowed
    ├── TooDeep                nested deeper than MAX_DEPTH
    ├── TooSlow                the answer did not finish within its time
    └── NotJson                not JSON at all (or not UTF-8)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

import orjson
import requests

from runtime.deadlines import deadline, socket_of

MAX_DEPTH = 128
"""Levels of nested objects and arrays accepted; real messages use a handful, and steps copy
and serialise values recursively, so a deeper one would fail later in a worse place."""
CHUNK = 64 * 1024


class OutOfBounds(ValueError):
    """A value from outside was refused; the message names it and the bound it broke."""


class TooLarge(OutOfBounds):
    """More bytes than the bound allows (a body, an answer, a file)."""


class TooDeep(OutOfBounds):
    """JSON nested deeper than ``MAX_DEPTH``."""


class TooSlow(OutOfBounds):
    """A body that did not arrive whole within its time (or broke off on the way)."""


class NotJson(OutOfBounds):
    """Text that should have been JSON and is not."""


def loads(data: bytes | str, *, what: object, limit: int | None = None) -> Any:
    """Parse JSON from outside.

    Args:
        data: the text or its UTF-8 bytes.
        what: names the value for messages ("the step data from 127.0.0.1:9000"); its
            ``str`` is taken only when a message needs it, so it may be an object that
            words itself then (``runtime.network.AnswerOf``).
        limit: the most bytes (or characters) accepted; None for no size bound.

    Raises:
        TooLarge, TooDeep, NotJson.
    """
    if limit is not None and len(data) > limit:
        raise TooLarge(f"{what} is {len(data):,} bytes, more than the {limit:,} bytes allowed")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = _loads_exactly(data, what)
    if _deeper_than(value, MAX_DEPTH):
        raise TooDeep(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value


def _loads_exactly(data: bytes | str, what: object) -> Any:
    # orjson refuses some text JSON.parse accepts (lone surrogate escapes, integers past
    # 64 bits, NaN): the stdlib decides those, and words the error when it is not JSON.
    try:
        return json.loads(data)
    except RecursionError:
        raise TooDeep(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotJson(f"{what} is not valid JSON{_why(exc)}") from None


def read(response: requests.Response, *, what: str, limit: int, seconds: float) -> bytes:
    """The whole body of a streamed response, refused past ``limit`` bytes or ``seconds``.

    The request must have been sent with ``stream=True``; the response is closed either way.

    Raises:
        TooLarge, TooSlow.
    """
    return b"".join(_chunks(response, what=what, limit=limit, seconds=seconds))


def copy(
    response: requests.Response, into: IO[bytes], *, what: str, limit: int, seconds: float
) -> int:
    """Write a streamed response's body to a file, within the same bounds; the bytes written.

    For bodies that may be large (files, attachments): never more than a chunk in memory.

    Raises:
        TooLarge, TooSlow.
    """
    size = 0
    for chunk in _chunks(response, what=what, limit=limit, seconds=seconds):
        into.write(chunk)
        size += len(chunk)
    return size


def _chunks(
    response: requests.Response, *, what: str, limit: int, seconds: float
) -> Iterator[bytes]:
    declared = response.headers.get("Content-Length", "")

    def too_slow() -> TooSlow:
        return TooSlow(f"{what} did not finish within {seconds:g} s: the server is too slow")

    try:
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(
                f"{what} is {int(declared):,} bytes, more than the {limit:,} bytes allowed"
            )
        with deadline(seconds, too_slow=too_slow) as exchange:
            exchange.watch(socket_of(response))
            size = 0
            for chunk in response.iter_content(chunk_size=CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{what} is more than the {limit:,} bytes allowed")
                yield chunk
    except requests.RequestException as exc:
        raise TooSlow(f"{what} broke off ({type(exc).__name__})") from None
    finally:
        response.close()


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit``, without recursion."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if type(item) is dict else item
        for child in children:
            child_kind = type(child)
            if child_kind is dict or child_kind is list:
                if depth >= limit:
                    return True
                pending.append((child, depth + 1))
    return False


def _why(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f" (line {error.lineno}, column {error.colno}): {error.msg}"
    if isinstance(error, UnicodeDecodeError):
        return ": not UTF-8 text"
    return f": {type(error).__name__}"
