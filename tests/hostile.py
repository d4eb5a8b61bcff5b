"""Hypothesis strategies for what an attacker or a broken upstream step can put on a queue.

A hostile message is a body and AMQP headers: random bytes; valid encryption (protocol 1 or
2) around random JSON shapes, values nested thousands of levels deep, huge strings, text
that is not UTF-8, JSON that is not an object; headers with missing, empty or odd
``messageId``, nonsense ``protocolVersion``, strange ``reply_to`` and random extra values.

``HYPOTHESIS_PROFILE=long`` runs many more examples than CI does (see tests/conftest.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from runtime.worker.crypto import MessageCipher


@dataclass(frozen=True)
class Hostile:
    body: bytes
    headers: dict[str, Any]
    kind: str


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"body": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


PLAINTEXTS = st.one_of(
    JSON_VALUES.map(lambda v: ("json value", json.dumps(v).encode())),
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4).map(
        lambda v: ("json object", json.dumps(v).encode())
    ),
    st.tuples(st.integers(100, 6000), st.sampled_from(["list", "object"])).map(
        lambda t: ("deep nesting", _nested(*t))
    ),
    st.integers(10_000, 2_000_000).map(
        lambda n: ("huge string", b'{"body": {"text": "' + b"x" * n + b'"}}')
    ),
    st.binary(min_size=1, max_size=200).map(lambda b: ("not utf-8", b"\xff\xfe" + b)),
    st.sampled_from([b"", b"null", b'"text"', b"[]", b'{"body": null}', b"{}", b"{"]).map(
        lambda b: ("odd json", b)
    ),
)

HEADER_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=3),
)


@st.composite
def hostile_headers(draw: st.DrawFn, version: int) -> dict[str, Any]:
    headers: dict[str, Any] = draw(
        st.dictionaries(st.text(min_size=1, max_size=12), HEADER_VALUES, max_size=4)
    )
    message_id = draw(
        st.one_of(
            st.uuids().map(str),
            st.just(""),
            st.just(None),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.just("shared-id"),
        )
    )
    if message_id is not None:
        headers["messageId"] = message_id
    headers["protocolVersion"] = draw(
        st.one_of(st.just(version), st.sampled_from(["abc", "", "2", -1, 3, "1.5", None]))
    )
    if draw(st.booleans()):
        headers["reply_to"] = draw(HEADER_VALUES)
    return headers


def hostile_messages(cipher: MessageCipher) -> st.SearchStrategy[Hostile]:
    def encrypted(version: int) -> st.SearchStrategy[tuple[str, bytes]]:
        def seal(item: tuple[str, bytes]) -> tuple[str, bytes]:
            kind, plain = item
            sealed = cipher.encrypt(plain)
            return f"{kind}, v{version}", sealed if version == 2 else base64.b64encode(sealed)

        return PLAINTEXTS.map(seal)

    @st.composite
    def build(draw: st.DrawFn) -> Hostile:
        version = draw(st.sampled_from([1, 2]))
        kind, body = draw(
            st.one_of(
                encrypted(version),
                st.binary(max_size=2000).map(lambda b: ("random bytes", b)),
                encrypted(version).map(lambda kb: (f"truncated {kb[0]}", kb[1][: len(kb[1]) // 2])),
            )
        )
        return Hostile(body, draw(hostile_headers(version)), kind)

    return build()


def generate(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of a strategy, the same ones on every run (for integration tests)."""
    collected: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(example: Any) -> None:
        collected.append(example)

    collect()
    return collected
