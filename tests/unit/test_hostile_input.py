"""Input from outside, hostile or broken: always a message or a clear refusal, bounded.

The decode path is fuzzed with Hypothesis (a fixed seed and 300 examples in CI;
``HYPOTHESIS_PROFILE=long`` for many more). Servers that answer garbage, too much, or never
finish are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from runtime import bounded
from runtime.auth.credentials import Credentials
from runtime.auth.errors import TokenEndpointUnavailable
from runtime.auth.token_client import request_token
from runtime.platform.api import PlatformApi, PlatformApiError
from runtime.platform.object_storage import ObjectStorage, ObjectStorageError
from runtime.worker.crypto import MessageCipher
from runtime.worker.headers import incoming
from runtime.worker.lightweight import Bodies
from runtime.worker.transport import Delivery, Properties
from runtime.worker.wire import BadMessage, decode, dumps
from tests.helpers import finishes
from tests.hostile import hostile_messages
from tests.local_http import Handler, serving

CIPHER = MessageCipher("fuzzing-password", "0123456789abcdef")
LIMIT = 1024 * 1024


@given(hostile_messages(CIPHER), st.sampled_from(["default", "error"]))
def test_decoding_anything_gives_a_message_or_a_clear_rejection(hostile, input_format):
    delivery = Delivery(hostile.body, Properties(headers=hostile.headers), tag=1, generation=1)
    try:
        message = decode(delivery, CIPHER, input_format, LIMIT)
    except BadMessage as exc:
        reason = str(exc)
    else:
        reason = None
    if reason is not None:
        assert reason
        assert "\n" not in reason
        return
    assert isinstance(message, dict)
    assert isinstance(message["headers"], dict)
    reply_to = message["headers"].get("reply_to")
    assert reply_to is None or isinstance(reply_to, str)
    dumps(message)  # whatever was accepted can be copied and sent on
    # Every accepted message belongs to a thread: the one it names, else a new one.
    reduced = incoming(hostile.headers)
    named = hostile.headers.get("threadId") or reduced.get("x-eio-meta-trace-id")
    assert reduced["threadId"] == named if named else isinstance(reduced["threadId"], str)
    assert reduced["threadId"]


def test_a_value_nested_five_thousand_levels_deep_is_bad_input_not_a_crash():
    body = CIPHER.encrypt(b'{"body": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    delivery = Delivery(body, Properties(headers={"protocolVersion": 2}), tag=1, generation=1)
    with pytest.raises(BadMessage, match="nested deeper than 128 levels"):
        decode(delivery, CIPHER, "default", LIMIT)


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    delivery = Delivery(b"x" * (LIMIT + 1), Properties(headers={}), tag=1, generation=1)
    with pytest.raises(BadMessage, match="more than the 1,048,576 accepted"):
        decode(delivery, CIPHER, "default", LIMIT)


def test_depth_is_counted_exactly():
    assert bounded.loads("[" * 128 + "]" * 128, what="x") is not None
    with pytest.raises(bounded.TooDeep):
        bounded.loads("[" * 129 + "]" * 129, what="x")
    with pytest.raises(bounded.TooDeep, match="x is nested deeper"):
        bounded.loads("[" * 2000 + "]" * 2000, what="x")  # past the parser's own stack


# --- servers that answer badly -----------------------------------------------------------


class _Hostile(Handler):
    def answer(self):
        mode = self.server.mode
        if mode == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"1\r\n \r\n")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
        body, kind = {
            "html": (b"<html><body>Sign in</body></html>", "text/html"),
            "no token": (b'{"token_type": "bearer"}', "application/json"),
            "huge": (b'{"a": "' + b"x" * (50 * 1024 * 1024) + b'"}', "application/json"),
            "list": (b"[1, 2, 3]", "application/json"),
            "config list": (b'{"config": [1], "snapshot": {}}', "application/json"),
            "deep": (b"[" * 3000 + b"]" * 3000, "application/json"),
            "garbage": (b"\x00\xff garbage", "application/octet-stream"),
        }[mode]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile_server():
    with serving(_Hostile, mode="html") as server:
        yield server


def _credential(server) -> Credentials:
    return Credentials.parse(
        {
            "type": "oauth2",
            "clientId": "c",
            "clientSecret": "client-secret-1",
            "refreshToken": "rt-1234",
            "tokenUrl": f"{server.url}/token",
        }
    )


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("html", "not a JSON object (text/html)"),
        ("no token", "without an access_token"),
        ("huge", "more than the 1,048,576 bytes allowed"),
        ("endless", "did not finish answering within 2 s"),
    ],
)
def test_a_token_endpoint_answering_garbage_is_a_clear_bounded_error(hostile_server, mode, says):
    hostile_server.mode = mode
    ended = finishes(
        lambda: request_token(_credential(hostile_server), http=requests.Session(), timeout=2),
        within=20,
    )
    assert isinstance(ended.error, TokenEndpointUnavailable)
    assert says in str(ended.error)
    assert hostile_server.host in str(ended.error)


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("garbage", "is not valid JSON"),
        ("list", "is not a JSON object"),
        ("config list", "'config' is a list, not an object"),
        ("deep", "nested deeper than 128 levels"),
        ("huge", "more than the"),
    ],
)
def test_a_platform_api_answering_garbage_step_data_is_a_clear_error(hostile_server, mode, says):
    hostile_server.mode = mode
    api = PlatformApi(hostile_server.url, "u", "p", attempts=1)
    with pytest.raises(PlatformApiError) as caught:
        api.step("flow", "step")
    assert says in str(caught.value)
    assert hostile_server.host in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "says"),
    [("html", "is not a message body of this flow"), ("huge", "more than the")],
)
def test_object_storage_answering_the_wrong_content_is_a_clear_error(
    hostile_server, monkeypatch, mode, says
):
    hostile_server.mode = mode
    monkeypatch.setattr("runtime.platform.object_storage.OBJECT_LIMIT", 1024 * 1024)
    storage = ObjectStorage(hostile_server.url, "token-123456", flow_id="f", step_id="s")
    with pytest.raises(ObjectStorageError) as caught:
        Bodies(storage, CIPHER).get("object-1")
    assert says in str(caught.value)
    assert hostile_server.host in str(caught.value)
