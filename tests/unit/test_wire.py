from __future__ import annotations

import base64
import json

import pytest

from runtime.worker import headers
from runtime.worker.crypto import CipherError, MessageCipher
from runtime.worker.settings import REQUIRED_ALWAYS, REQUIRED_FOR_MESSAGES, Settings
from runtime.worker.transport import Delivery, Properties
from runtime.worker.wire import BadMessage, decode, decode_value, encode, error_envelope

CIPHER = MessageCipher("testCryptoPassword", "iv=any16_symbols")


def delivery(body: bytes, **amqp_headers) -> Delivery:
    return Delivery(body=body, properties=Properties(headers=amqp_headers), tag=1, generation=1)


def test_known_ciphertext_from_the_node_encryptor():
    # What the Node.js sailor's Encryptor gives for {"body":{"a":1}} with this key and IV.
    node = encode({"body": {"a": 1}}, MessageCipher("pass", "0123456789abcdef"), 1)
    assert node == b"gjznjs95mX6LeAIlothBEGiHxYPw95+oS4CxXDtMT+8="


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip_in_each_protocol_version(version):
    value = {"body": {"text": "ünïcode ✓", "n": [1, 2.5, None]}, "headers": {}}
    body = encode(value, CIPHER, version)
    if version == 1:
        base64.b64decode(body, validate=True)
    assert decode_value(body, CIPHER, version) == value


def test_a_missing_protocol_version_header_means_base64():
    message = decode(delivery(encode({"body": 1}, CIPHER, 1)), CIPHER, "default")
    assert message.body == 1
    assert message.headers == {}


def test_reply_to_is_copied_into_the_message_headers():
    message = decode(delivery(encode({"body": 1}, CIPHER), reply_to="rk"), CIPHER, "default")
    assert message.headers["reply_to"] == "rk"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not base64 !!", "not base64"),
        (base64.b64encode(b"0123456789abcdef"), "cannot be decrypted"),
        (
            base64.b64encode(MessageCipher("other", "iv=any16_symbols").encrypt(b"{}")),
            "cannot be decrypted",
        ),
        (base64.b64encode(CIPHER.encrypt(b"not json")), "not valid JSON"),
        (encode([1, 2], CIPHER), "not a JSON object"),
        (b"", "empty"),
    ],
)
def test_bad_bodies_are_rejected_without_showing_them(body, reason):
    with pytest.raises(BadMessage) as caught:
        decode(delivery(body), CIPHER, "default")
    assert reason in str(caught.value)
    assert "0123456789abcdef" not in str(caught.value)


def test_error_envelope_for_v1_and_v2_inputs():
    original_v1 = delivery(encode({"body": "in"}, CIPHER, 1))
    body, encrypted_error = error_envelope(
        {"name": "E", "message": "m", "stack": "s"}, original_v1, CIPHER
    )
    envelope = json.loads(body)
    assert decode_value(envelope["error"].encode(), CIPHER) == {
        "name": "E",
        "message": "m",
        "stack": "s",
    }
    assert envelope["errorInput"] == original_v1.body.decode()
    assert encrypted_error.decode() == envelope["error"]
    original_v2 = delivery(encode({"body": "in2"}, CIPHER, 2), protocolVersion=2)
    envelope = json.loads(
        error_envelope({"name": "E", "message": "m", "stack": "s"}, original_v2, CIPHER)[0]
    )
    assert decode_value(envelope["errorInput"].encode(), CIPHER)["body"] == "in2"
    assert "errorInput" not in json.loads(error_envelope({}, None, CIPHER)[0])


def test_error_input_format_decrypts_both_parts():
    envelope = json.dumps(
        {
            "error": encode({"message": "boom"}, CIPHER).decode(),
            "errorInput": encode({"body": 5}, CIPHER).decode(),
        }
    ).encode()
    message = decode(delivery(envelope, stepId="s0"), CIPHER, "error")
    assert message.body == {"error": {"message": "boom"}, "errorInput": {"body": 5}}
    assert message.headers == {"stepId": "s0"}


def test_cipher_refuses_partial_blocks():
    with pytest.raises(CipherError):
        CIPHER.decrypt(b"123")


def test_incoming_headers_are_reduced_as_the_sailor_reduces_them():
    reduced = headers.incoming(
        {
            "stepId": "step_0",
            "messageId": "m1",
            "parentMessageId": "p0",
            "threadId": "t1",
            "X-EIO-Meta-Tenant": "acme",
            "reply_to": "rk",
            "execId": "dropped",
            "custom": "dropped",
        }
    )
    assert reduced == {
        "stepId": "step_0",
        "x-eio-meta-tenant": "acme",
        "threadId": "t1",
        "messageId": "m1",
        "parentMessageId": "p0",
        "reply_to": "rk",
    }


def test_outgoing_headers_name_this_step_and_chain_the_ids():
    values = {f"ELASTICIO_{k}": k.lower() for k in (*REQUIRED_ALWAYS, *REQUIRED_FOR_MESSAGES)}
    values["ELASTICIO_MESSAGE_CRYPTO_IV"] = "0123456789abcdef"
    settings = Settings.from_env(values)
    base = headers.outgoing(headers.incoming({"messageId": "m1", "stepId": "prev"}), settings)
    assert base["parentMessageId"] == "m1"
    assert base["messageId"] != "m1"
    assert base["stepId"] == "step_id"
    assert base["taskId"] == "flow_id"
    assert base["function"] == "function"
    assert isinstance(base["start"], int)


def test_routing_key_override_is_found_in_any_case_and_stripped():
    override, kept = headers.routing_key_override({"X-EIO-Routing-Key": "rk2", "a": 1})
    assert override == "rk2"
    assert kept == {"a": 1}


def test_properties_with_new_headers_keep_every_other_field():
    from dataclasses import fields

    from runtime.worker.transport import Properties

    values = {f.name: f"v-{f.name}" for f in fields(Properties) if f.name != "headers"}
    original = Properties(headers={"a": 1}, **values)  # type: ignore[arg-type]
    changed = original.with_headers({"b": 2})
    assert changed.headers == {"b": 2}
    assert {name: getattr(changed, name) for name in values} == values
