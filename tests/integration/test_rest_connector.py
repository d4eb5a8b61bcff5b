"""The REST connector in a real worker: bad input is one clear error event per message, the
next message flows, and no secret is in any event or log line."""

from __future__ import annotations

import json

import pytest
import requests

from tests.helpers import ROOT, demo_oauth


def secrets_of(config, store_token="storage-token-123456"):
    return [
        config["oauth"]["access_token"],
        config["oauth"]["refresh_token"],
        config["clientSecret"],
        store_token,
    ]


def assert_no_secret(texts, secrets):
    for text in texts:
        for secret in secrets:
            assert secret not in text


def error_messages(harness, count):
    errors = harness.take("error", count)
    return [e["payload"]["error"]["message"] for e in errors], [e["raw"].decode() for e in errors]


def test_bad_xml_and_oversized_answers_fail_their_message_only(step, demo_api):
    config = {
        **demo_oauth(demo_api),
        "method": "POST",
        "url": '"/" & body.path',
        "urlMode": "jsonata",
        "bodyType": "application/xml",
        "body": "body.xml",
        "bodyMode": "jsonata",
        "maxContentLength": "1000",
    }
    harness = step("httpRequest", component=ROOT, config=config)
    worker = harness.start_worker()
    demo_api.book.expire_all()
    harness.send({"path": "echo", "xml": "<a><b></a>"})
    harness.send({"path": "big?bytes=5000", "xml": "<a/>"})
    harness.send({"path": "echo", "xml": "<ok>fine</ok>"})
    messages, raw = error_messages(harness, 2)
    assert "not well-formed XML" in messages[0]
    assert "larger than 1,000 bytes" in messages[1]
    data = harness.take("message", 1)[0]["payload"]["body"]
    assert data["body"]["body"] == "<ok>fine</ok>"
    assert harness.take("keys", 1)
    assert_no_secret([*raw, json.dumps(worker.logs)], secrets_of(config))
    assert harness.queued() == 0


def test_a_missing_attachment_fails_its_message_only(step, demo_api, store):
    config = {
        **demo_oauth(demo_api),
        "method": "POST",
        "url": "/upload",
        "bodyType": "application/octet-stream",
        "uploadFile": True,
        "body": "body.file",
        "bodyMode": "jsonata",
    }
    harness = step("httpRequest", component=ROOT, config=config)
    worker = harness.start_worker(
        ELASTICIO_OBJECT_STORAGE_URI=store.url, ELASTICIO_OBJECT_STORAGE_TOKEN=store.token
    )
    answer = requests.post(
        f"{store.url}/objects",
        data=b"file content",
        headers={"Authorization": f"Bearer {store.token}"},
        timeout=10,
    )
    good = f"{store.url}/objects/{answer.json()['objectId']}?storage_type=maester"
    harness.send({"file": f"{store.url}/objects/gone?storage_type=maester"})
    harness.send({"file": good})
    messages, raw = error_messages(harness, 1)
    assert "could not read the file at" in messages[0] and "404" in messages[0]
    data = harness.take("message", 1)[0]["payload"]["body"]
    assert data["body"]["size"] == len(b"file content")
    assert_no_secret([*raw, json.dumps(worker.logs)], secrets_of(config))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"url": '"/echo?x=" & (body.x', "urlMode": "jsonata"},
         "field 'url': the JSONata expression '\"/echo?x=\" & (body.x' does not compile at "
         "character"),
        ({"method": "POST", "url": "/echo", "bodyType": "application/yaml"},
         "bodyType 'application/yaml' is not a content type we send"),
    ],
)  # fmt: skip
def test_a_bad_configuration_is_an_error_for_each_message_and_the_queue_moves(
    step, demo_api, change, said
):
    config = {**demo_oauth(demo_api), **change}
    harness = step("httpRequest", component=ROOT, config=config)
    worker = harness.start_worker()
    harness.send({"x": 1})
    harness.send({"x": 2})
    messages, raw = error_messages(harness, 2)
    assert all(said in message for message in messages), messages
    assert harness.empty("message")
    assert worker.process.poll() is None
    assert harness.queued() == 0
    assert_no_secret([*raw, json.dumps(worker.logs)], secrets_of(config))
