"""The worker against the Node.js sailor's conformance list (sailor-protocol.md §8), on RabbitMQ."""

from __future__ import annotations

import base64
import json

import pytest

from runtime.devtools.localplatform import messaging
from runtime.worker.crypto import MessageCipher

STANDARD_HEADERS = {
    "execId", "taskId", "workspaceId", "containerId", "userId", "stepId", "compId",
    "function", "threadId", "parentMessageId", "protocolVersion", "start", "end", "messageId",
}  # fmt: skip


@pytest.mark.parametrize("version", [1, 2])
def test_data_headers_properties_and_body_in_each_protocol_version(step, version):
    harness = step("work", protocolVersion=version)
    harness.start_worker()
    message_id = harness.send({"a": 1}, threadId="thread-7")
    [out] = harness.take("message")
    props = out["properties"]
    assert set(out["headers"]) == STANDARD_HEADERS
    flow = harness.flow
    assert out["headers"]["execId"] == f"{flow.flow_id}-exec"
    assert out["headers"]["taskId"] == flow.flow_id
    assert out["headers"]["stepId"] == flow.step_id
    assert out["headers"]["function"] == "work"
    assert out["headers"]["threadId"] == "thread-7"
    assert out["headers"]["parentMessageId"] == message_id
    assert out["headers"]["protocolVersion"] == version
    assert out["headers"]["messageId"] != message_id
    assert out["headers"]["start"] <= out["headers"]["end"]
    assert props.content_type == "application/json"
    assert props.content_encoding == "utf8"
    assert props.delivery_mode == 1
    for absent in ("message_id", "timestamp", "correlation_id", "reply_to", "expiration"):
        assert getattr(props, absent) is None
    cipher = MessageCipher(flow.crypto.password, flow.crypto.iv)
    raw = out["raw"] if version == 2 else base64.b64decode(out["raw"])
    assert json.loads(cipher.decrypt(raw))["body"] == {"a": 1}


def test_protocol_2_input_is_read_as_raw_bytes(step):
    harness = step("work")
    harness.start_worker()
    harness.send({"binary": True}, version=2)
    [out] = harness.take("message")
    assert out["payload"]["body"] == {"binary": True}


def test_thread_id_falls_back_to_the_trace_header_then_a_new_one(step):
    harness = step("work")
    harness.start_worker()
    harness.send({}, **{"X-EIO-Meta-Trace-Id": "trace-1", "x-eio-meta-tenant": "t9"})
    harness.send({})
    first, second = harness.take("message", 2)
    assert first["headers"]["threadId"] == "trace-1"
    assert first["headers"]["x-eio-meta-trace-id"] == "trace-1"
    assert first["headers"]["x-eio-meta-tenant"] == "t9"
    assert len(second["headers"]["threadId"]) == 36  # a uuid


def test_several_events_keep_order_ids_and_own_headers(step):
    harness = step("everything")
    harness.start_worker()
    harness.send({})
    first, second = harness.take("message", 2)
    assert first["payload"]["body"] == {"n": 1}
    assert second["payload"]["body"] == {"n": 2}
    assert second["headers"]["messageId"] == "fixed-id"
    assert second["payload"]["headers"] == {"x-custom": "kept"}
    snapshot, update = harness.take("snapshot", 2)
    assert snapshot["payload"] == {"seen": 1}
    assert snapshot["headers"]["snapshotEvent"] == "snapshot"
    assert update["payload"] == {"more": True}
    assert update["headers"]["snapshotEvent"] == "updateSnapshot"
    assert harness.empty("error")
    assert harness.queued() == 0


def test_passthrough_adds_the_step_own_output(step):
    harness = step("work", isPassthrough=True)
    harness.start_worker()
    earlier = {"step_0": {"body": {"from": "before"}, "headers": {}}}
    harness.send({"body": {"x": 1}, "passthrough": earlier})
    [out] = harness.take("message")
    passthrough = out["payload"]["passthrough"]
    assert passthrough["step_0"] == earlier["step_0"]
    assert passthrough[harness.flow.step_id]["body"] == {"x": 1}
    assert "passthrough" not in passthrough[harness.flow.step_id]


def test_no_self_passthrough_stores_the_incoming_message_under_the_previous_step(step):
    harness = step("work", isPassthrough=True, env={"ELASTICIO_NO_SELF_PASSTRHOUGH": "true"})
    harness.start_worker()
    harness.send({"body": {"x": 2}, "passthrough": {}}, stepId="step_0")
    [out] = harness.take("message")
    passthrough = out["payload"]["passthrough"]
    assert list(passthrough) == ["step_0"]
    assert passthrough["step_0"]["body"] == {"x": 2}


def test_additional_vars_become_camel_cased_headers(step):
    harness = step(
        "work",
        env={
            "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS": "ELASTICIO_FIRST_ENV, ELASTICIO_SECOND_ELASTICIO_ENV",
            "ELASTICIO_FIRST_ENV": "one",
            "ELASTICIO_SECOND_ELASTICIO_ENV": "two",
        },
    )
    harness.start_worker()
    harness.send({})
    [out] = harness.take("message")
    assert out["headers"]["firstEnv"] == "one"
    assert out["headers"]["secondElasticioEnv"] == "two"


def test_routing_key_header_redirects_data_and_is_stripped(step):
    harness = step("route")
    harness.start_worker()
    harness.send({"to": harness.flow.routing_key("reply")})
    [out] = harness.take("reply")
    assert out["payload"]["headers"] == {}
    assert harness.empty("message")


def test_http_reply_goes_to_reply_to_in_protocol_1(step):
    harness = step("reply", protocolVersion=2)
    harness.start_worker()
    reply_key = harness.flow.routing_key("reply")
    harness.send({"q": 1}, reply_to=reply_key)
    [reply] = harness.take("reply")
    assert reply["payload"] == {
        "statusCode": 202,
        "body": {"accepted": {"q": 1}},
        "headers": {"X-A": "1"},
    }
    assert reply["headers"]["protocolVersion"] == 1
    assert reply["headers"]["reply_to"] == reply_key
    [data] = harness.take("message")
    assert data["payload"]["body"] == {"replied": True}
    assert data["headers"]["reply_to"] == reply_key  # kept on every outgoing message


def test_http_reply_without_reply_to_is_an_error(step):
    harness = step("reply")
    harness.start_worker()
    harness.send({})
    [error] = harness.take("error")
    assert "'reply_to' was not found in AMQP headers" in error["payload"]["error"]["message"]


def test_error_envelope_decrypts_to_the_error_and_the_original(step):
    harness = step("fail")
    harness.start_worker()
    message_id = harness.send({"bad": "input"})
    [error] = harness.take("error")
    assert error["payload"]["error"]["name"] == "ValueError"
    assert error["payload"]["error"]["message"] == "cannot handle {'bad': 'input'}"
    assert "fail.py" in error["payload"]["error"]["stack"]
    assert error["payload"]["errorInput"]["body"] == {"bad": "input"}
    assert "protocolVersion" not in error["headers"]
    assert error["headers"]["parentMessageId"] == message_id
    assert harness.empty("message")
    assert harness.queued() == 0  # rejected, not requeued


def test_error_envelope_of_a_protocol_2_input(step):
    harness = step("fail")
    harness.start_worker()
    harness.send({"v": 2}, version=2)
    [error] = harness.take("error")
    assert error["payload"]["errorInput"]["body"] == {"v": 2}


def test_errors_are_copied_to_reply_to_unless_disabled(step):
    harness = step("fail")
    harness.start_worker()
    harness.send({}, reply_to=harness.flow.routing_key("reply"))
    harness.take("error")
    [copy] = harness.take("reply")
    assert copy["event"] == "error reply"
    assert copy["headers"]["x-eio-error-response"] is True
    assert copy["payload"]["name"] == "ValueError"

    quiet = step("fail", env={"ELASTICIO_NO_ERROR_REPLIES": "true"})
    quiet.start_worker()
    quiet.send({}, reply_to=quiet.flow.routing_key("reply"))
    quiet.take("error")
    assert quiet.empty("reply")


def test_rebound_republishes_the_original_bytes_with_a_growing_expiration(step):
    harness = step("rebound")
    harness.start_worker()
    harness.send({"try": 1}, custom="kept")
    body, properties = harness.take_raw("rebound")
    assert properties.expiration == "15000"
    assert properties.headers["reboundIteration"] == 1
    assert properties.headers["reboundReason"] == "the API asked us to come back later"
    assert properties.headers["custom"] == "kept"
    assert properties.content_type == "application/json"
    assert messaging.read(harness.flow, "rebound", body, properties)["payload"]["body"] == {
        "try": 1
    }
    harness.send({"try": 3}, reboundIteration=2)
    _, third = harness.take_raw("rebound")
    assert third.expiration == "60000"
    assert third.headers["reboundIteration"] == 3
    assert harness.empty("error")
    assert harness.queued() == 0  # the original is acked


def test_rebound_limit_turns_into_an_error(step):
    harness = step("rebound", env={"ELASTICIO_REBOUND_LIMIT": "2"})
    harness.start_worker()
    harness.send({"n": 1}, reboundIteration=2)
    [error] = harness.take("error")
    assert error["payload"]["error"]["message"] == "Rebound limit exceeded"
    assert error["payload"]["errorInput"]["body"] == {"n": 1}
    assert harness.queued() == 0


def test_snapshot_is_kept_in_memory_between_messages(step):
    harness = step("snapshots", snapshot={"count": 10})
    harness.start_worker()
    for _ in range(3):
        harness.send({})
    outputs = harness.take("message", 3)
    assert [o["payload"]["body"]["count"] for o in outputs] == [11, 12, 13]


def test_outgoing_size_limit(step):
    harness = step("big", env={"ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT": "1000"})
    harness.start_worker()
    harness.send({"size": 5000})
    [error] = harness.take("error")
    assert "exceeds limit of 1000." in error["payload"]["error"]["message"]
    assert harness.empty("message")


def test_persistent_messages_when_asked(step):
    harness = step("work", env={"ELASTICIO_AMQP_PERSISTENT_MESSAGES": "true"})
    harness.start_worker()
    harness.send({})
    [out] = harness.take("message")
    assert out["properties"].delivery_mode == 2


def test_a_custom_error_handler_step_receives_decrypted_error_envelopes(step):
    harness = step("variables", env={"ELASTICIO_INPUT_FORMAT": "error"})
    harness.start_worker()
    cipher = messaging.cipher_for(harness.flow)
    from runtime.worker.wire import encode

    envelope = {
        "error": encode({"name": "E", "message": "upstream failed"}, cipher).decode(),
        "errorInput": encode({"body": {"order": 9}}, cipher).decode(),
    }
    harness.publish_raw(json.dumps(envelope).encode(), {"messageId": "err-1", "stepId": "s0"})
    [out] = harness.take("message")
    assert out["payload"]["body"]["input"] == {
        "error": {"name": "E", "message": "upstream failed"},
        "errorInput": {"body": {"order": 9}},
    }


def test_the_data_rate_limit_paces_data_events(step):
    import time

    harness = step("many")
    harness.start_worker(ELASTICIO_DATA_RATE_LIMIT="1", ELASTICIO_RATE_INTERVAL="110")
    started = time.monotonic()
    harness.send({"count": 6})
    outputs = harness.take("message", 6)
    assert time.monotonic() - started >= 5 * 0.11
    assert [o["payload"]["body"]["i"] for o in outputs] == [0, 1, 2, 3, 4, 5]


def test_flow_variables_reach_the_step(step):
    harness = step("variables", variables={"region": "eu", "limit": 3})
    harness.start_worker()
    harness.send({})
    [out] = harness.take("message")
    assert out["payload"]["body"]["variables"] == {"region": "eu", "limit": 3}
