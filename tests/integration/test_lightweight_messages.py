"""Lightweight messages: bodies kept in object storage, as Node.js steps may send them."""

from __future__ import annotations

import json

from runtime.devtools.localplatform import messaging
from runtime.platform.object_storage import OBJECT_ID_HEADER


def storage_env(store, **extra):
    return {
        "ELASTICIO_OBJECT_STORAGE_URI": store.url,
        "ELASTICIO_OBJECT_STORAGE_TOKEN": store.token,
        **extra,
    }


def put(store, harness, value) -> str:
    cipher = messaging.cipher_for(harness.flow)
    object_id = "obj-1"
    store.objects[object_id] = cipher.encrypt(json.dumps(value).encode())
    return object_id


def test_an_incoming_body_in_object_storage_is_fetched_before_the_step_runs(step, store):
    harness = step("work", isPassthrough=True, env=storage_env(store))
    harness.start_worker()
    object_id = put(store, harness, {"big": "payload"})
    harness.send({"body": {}, "headers": {OBJECT_ID_HEADER: object_id}})
    [out] = harness.take("message")
    assert out["payload"]["body"] == {"big": "payload"}


def test_large_outgoing_bodies_are_stored_and_replaced_by_a_reference(step, store):
    harness = step(
        "big",
        env=storage_env(
            store,
            ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE="true",
            ELASTICIO_OBJECT_STORAGE_SIZE_THRESHOLD="1000",
        ),
    )
    harness.start_worker()
    harness.send({"size": 5000})
    harness.send({"size": 10})
    large, small = harness.take("message", 2)
    assert large["payload"]["body"] == {}
    object_id = large["payload"]["headers"][OBJECT_ID_HEADER]
    cipher = messaging.cipher_for(harness.flow)
    assert json.loads(cipher.decrypt(store.objects[object_id])) == {"text": "x" * 5000}
    assert small["payload"]["body"] == {"text": "x" * 10}


def test_a_reference_without_object_storage_is_an_error_not_an_empty_body(step):
    harness = step("work")
    harness.start_worker()
    harness.send({"body": {}, "headers": {OBJECT_ID_HEADER: "obj-9"}})
    [error] = harness.take("error")
    assert "ELASTICIO_OBJECT_STORAGE_URI is not set" in error["payload"]["error"]["message"]
    assert harness.empty("message")
    assert harness.queued() == 0


def test_a_missing_object_is_an_error(step, store):
    harness = step("work", env=storage_env(store))
    harness.start_worker()
    harness.send({"body": {}, "headers": {OBJECT_ID_HEADER: "no-such-object"}})
    [error] = harness.take("error")
    assert "refused GET /objects/no-such-object (404)" in error["payload"]["error"]["message"]
