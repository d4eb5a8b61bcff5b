"""Interoperability with elastic.io's Node.js sailor 2.7.8, run side by side on one broker."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from runtime.devtools.localplatform import messaging
from tests.integration.conftest import NODE_DIR


def node_crypto(mode: str, flow, data: bytes, encoding: str = "base64") -> bytes:
    result = subprocess.run(
        ["node", str(NODE_DIR / "crypto.js"), mode, flow.crypto.password, flow.crypto.iv, encoding],
        input=data,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return result.stdout


@pytest.mark.parametrize("version", [1, 2])
def test_a_message_encrypted_by_the_node_encryptor_is_processed_and_ours_decrypt_there(
    step, node_sailor, version
):
    harness = step("work", protocolVersion=version)
    harness.start_worker()
    message = {"id": "m-1", "body": {"from": "node", "ünïcode": "✓"}, "headers": {}}
    encoding = "raw" if version == 2 else "base64"
    body = node_crypto("encrypt", harness.flow, json.dumps(message).encode(), encoding)
    harness.publish_raw(body, {"messageId": "node-1", "protocolVersion": version})
    [out] = harness.take("message")
    decrypted = json.loads(node_crypto("decrypt", harness.flow, out["raw"], encoding))
    assert decrypted["body"] == {"from": "node", "ünïcode": "✓"}


@pytest.mark.parametrize("version", [1, 2])
def test_node_then_python_then_node_in_one_flow(step, node_sailor, version):
    flow_id = f"interop-{uuid.uuid4().hex[:8]}"
    first = step("passthrough", flowId=flow_id, stepId="step_1", protocolVersion=version)
    ours = step("work", flowId=flow_id, stepId="step_2", protocolVersion=version)
    last = step("passthrough", flowId=flow_id, stepId="step_3", protocolVersion=version)
    exchange = ours.flow.publish_exchange
    ours.admin.bind(ours.flow.messages_queue, exchange, first.flow.routing_key("message"))
    last.admin.bind(last.flow.messages_queue, exchange, ours.flow.routing_key("message"))
    first.start_node_worker(node_sailor)
    ours.start_worker()
    last.start_node_worker(node_sailor)

    first.send(
        {"hello": "across runtimes"}, threadId="thread-interop", **{"x-eio-meta-trace": "t-1"}
    )
    [from_node] = first.take("message")
    [from_python] = ours.take("message")
    [final] = last.take("message")

    assert final["payload"]["body"] == {"hello": "across runtimes"}
    assert from_python["headers"]["parentMessageId"] == from_node["headers"]["messageId"]
    assert final["headers"]["parentMessageId"] == from_python["headers"]["messageId"]
    for event in (from_node, from_python, final):
        assert event["headers"]["threadId"] == "thread-interop"
        assert event["headers"]["x-eio-meta-trace"] == "t-1"
        assert event["headers"]["protocolVersion"] == version
    # Same header set from both runtimes.
    assert set(from_python["headers"]) == set(from_node["headers"])
    assert from_python["properties"].content_type == from_node["properties"].content_type
    assert from_python["properties"].delivery_mode == from_node["properties"].delivery_mode


def test_our_error_envelope_reads_like_the_node_one(step, node_sailor):
    harness = step("fail")
    harness.start_worker()
    harness.send({"x": 1})
    [error] = harness.take("error")
    envelope = json.loads(error["raw"])
    decrypted = json.loads(node_crypto("decrypt", harness.flow, envelope["error"].encode()))
    assert set(decrypted) == {"name", "message", "stack"}
    original = json.loads(node_crypto("decrypt", harness.flow, envelope["errorInput"].encode()))
    assert original["body"] == {"x": 1}
    assert messaging.read(harness.flow, "error", error["raw"], error["properties"])
