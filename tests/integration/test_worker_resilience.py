"""Bad input, hanging steps, lost connections and updateKeys, on the real broker."""

from __future__ import annotations

import pytest

from runtime.devtools.localplatform import messaging
from tests.helpers import wait_for


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"\x00\x01 not base64 at all", {"messageId": "m-garbage"}, "not base64"),
        (b"aGVsbG8gd29ybGQ=", {"messageId": "m-plain"}, "cannot be decrypted"),
        (None, {}, "no messageId header"),
    ],
)
def test_bad_input_is_rejected_logged_without_content_and_the_next_message_flows(
    step, body, headers, reason
):
    harness = step("work")
    worker = harness.start_worker()
    if body is None:
        body = messaging.encode_for(harness.flow, {"body": {"secret": "payload-7731"}})
    harness.publish_raw(body, headers)
    harness.send({"after": True})
    [out] = harness.take("message")
    assert out["payload"]["body"] == {"after": True}
    wait_for(lambda: any(e.get("msg") == "message_rejected" for e in worker.logs))
    rejected = [e for e in worker.logs if e.get("msg") == "message_rejected"]
    assert reason in rejected[0]["reason"]
    assert "payload-7731" not in worker.text
    assert harness.queued() == 0
    assert harness.empty("error")


def test_a_json_array_message_is_rejected(step):
    harness = step("work", dead_letters=True)
    worker = harness.start_worker()
    harness.publish_raw(messaging.encode_for(harness.flow, [1, 2, 3]), {"messageId": "m-array"})
    wait_for(lambda: "not a JSON object" in worker.text)
    harness.send({"next": 1})
    harness.take("message")
    wait_for(lambda: harness.dead_lettered() == 1)  # rejected: neither acked nor requeued
    assert harness.queued() == 0


def test_a_hanging_step_is_stopped_and_the_worker_goes_on(step):
    harness = step("work", env={"ELASTICIO_MESSAGE_TIMEOUT": "1"})
    harness.start_worker()
    harness.send({"sleep": 60, "n": 1})
    harness.send({"n": 2})
    [error] = harness.take("error", timeout=10)
    assert "ran longer than 1 s and was stopped" in error["payload"]["error"]["message"]
    assert error["payload"]["errorInput"]["body"]["n"] == 1
    [out] = harness.take("message", timeout=10)
    assert out["payload"]["body"] == {"n": 2}
    wait_for(lambda: harness.queued() == 0)


def test_a_force_closed_read_connection_is_survived_with_nothing_lost(step):
    harness = step("work")
    worker = harness.start_worker()
    harness.send({"n": 1})
    harness.take("message")
    assert harness.close_connections("read") == 1
    lost = wait_for_entry(worker, "amqp_connection_lost")
    assert lost["role"] == "read" and lost["node"] and lost["cause"]
    for n in range(2, 6):
        harness.send({"n": n})
    outputs = harness.take("message", 4)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == [2, 3, 4, 5]
    assert worker.process.poll() is None


def test_a_force_closed_write_connection_is_survived(step):
    harness = step("work")
    worker = harness.start_worker()
    assert harness.close_connections("write") == 1
    assert wait_for_entry(worker, "amqp_connection_lost")["role"] == "write"
    for n in range(3):
        harness.send({"n": n})
    outputs = harness.take("message", 3)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == [0, 1, 2]


def test_read_connection_lost_during_a_slow_message_processes_it_once(step):
    harness = step("work")
    worker = harness.start_worker()
    harness.send({"sleep": 2.0, "n": 1})
    harness.send({"n": 2})
    wait_for(lambda: harness.queued() == 1)  # the first is running, the second waiting
    assert harness.close_connections("read") == 1
    outputs = harness.take("message", 2, timeout=20)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == [1, 2]
    wait_for(lambda: harness.queued() == 0)
    assert "redelivery_of_message_in_progress" in worker.text
    worker.signal()
    assert worker.wait() == 0  # everything it did is published by now
    assert harness.empty("message")  # nothing twice
    assert harness.queued() == 0  # and nothing left unacknowledged


def test_update_keys_are_saved_then_used_by_the_next_message(step, platform_api):
    harness = step("keys", config={"apiKey": "original-key-0000"})
    harness.start_worker()
    harness.send({})
    [first] = harness.take("message")
    assert first["payload"]["body"] == {"apiKeyAtStart": "original-key-0000"}
    account = harness.flow.account
    assert platform_api.state.accounts[account]["apiKey"] == "rotated-key-0001"
    [published] = harness.take("keys")
    assert published["payload"]["keys"]["apiKey"] == "rotated-key-0001"
    assert published["payload"]["account"] == account
    harness.send({})
    [second] = harness.take("message")
    assert second["payload"]["body"] == {"apiKeyAtStart": "rotated-key-0001"}


def test_update_keys_with_nowhere_to_go_is_an_error(step, platform_api):
    harness = step("keys", accountId="", env={"ELASTICIO_UPDATE_KEYS_ROUTING_KEY": ""})
    platform_api.add_step(harness.flow.flow_id, harness.flow.step_id, {"config": {}})
    harness.start_worker()
    harness.send({})
    [error] = harness.take("error")
    assert "updateKeys has nowhere to go" in error["payload"]["error"]["message"]


def test_update_keys_the_platform_refuses_go_out_on_the_routing_key_and_later_to_the_platform(
    step, platform_api
):
    harness = step("keys")
    platform_api.state.fail_accounts = True
    worker = harness.start_worker()
    harness.send({})
    harness.take("message")
    harness.take("keys")
    refused = worker.wait_for_log("keys_not_saved")
    assert refused["attempt"] == 1
    assert "background" in refused["next"]
    platform_api.state.fail_accounts = False  # the platform recovers
    saved = worker.wait_for_log("keys_saved", timeout=30)
    assert saved["account"] == harness.flow.account
    assert platform_api.state.accounts[harness.flow.account]["apiKey"] == "rotated-key-0001"
    worker.signal()
    assert worker.wait() == 0
    assert harness.empty("error")


def test_unroutable_data_is_an_error_not_a_silent_drop(step):
    harness = step("route")
    harness.start_worker()
    harness.send({"to": "no-queue-is-bound-to-this"})
    [error] = harness.take("error")
    message = error["payload"]["error"]["message"]
    assert "no queue is bound to it" in message
    assert "no-queue-is-bound-to-this" in message
    assert harness.queued() == 0


def test_the_broker_going_away_and_coming_back_loses_nothing(step, amqp_url):
    from urllib.parse import urlsplit

    from tests.integration.tcp_proxy import TcpProxy

    broker = urlsplit(amqp_url)
    proxy = TcpProxy((broker.hostname, broker.port or 5672))
    via_proxy = amqp_url.replace(
        f"{broker.hostname}:{broker.port or 5672}", f"127.0.0.1:{proxy.port}"
    )
    harness = step("work")
    worker = harness.start_worker(ELASTICIO_AMQP_URI=via_proxy)
    harness.send({"n": 1})
    harness.take("message")
    proxy.down()
    for n in range(2, 7):
        harness.send({"n": n})  # queued while the worker cannot reach the broker
    wait_for(lambda: {e.get("role") for e in entries(worker, "amqp_connection_lost")} == {
        "read", "write"})  # fmt: skip
    wait_for(lambda: entries(worker, "amqp_unreachable"))  # said once a round, with its count
    assert worker.process.poll() is None  # still alive, trying
    proxy.up()
    outputs = harness.take("message", 5, timeout=30)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == [2, 3, 4, 5, 6]
    back = wait_for_entry(worker, "amqp_reconnected")
    assert back["seconds"] > 0 and back["attempts"] >= 1
    # The story is the runtime's own: pika's lines for the same outage are not shown.
    assert not [e for e in worker.logs if e.get("logger", "").startswith("pika")]
    proxy.down()


def test_a_broker_that_stays_away_ends_the_worker_after_the_deadline(step, amqp_url):
    from urllib.parse import urlsplit

    from tests.integration.tcp_proxy import TcpProxy

    broker = urlsplit(amqp_url)
    proxy = TcpProxy((broker.hostname, broker.port or 5672))
    via_proxy = amqp_url.replace(
        f"{broker.hostname}:{broker.port or 5672}", f"127.0.0.1:{proxy.port}"
    )
    harness = step("work")
    worker = harness.start_worker(
        ELASTICIO_AMQP_URI=via_proxy, ELASTICIO_AMQP_RECONNECT_DEADLINE="2"
    )
    proxy.down()
    assert worker.wait(timeout=30) == 1
    assert "stayed unreachable for 2 s" in worker.text


@pytest.mark.parametrize("prefetch", [1, 10])
def test_different_messages_sharing_a_message_id_all_run(step, prefetch):
    harness = step("work", prefetch=prefetch)
    worker = harness.start_worker()
    for n in range(5):
        harness.send({"n": n, "sleep": 0.3}, messageId="one-shared-id")
    outputs = harness.take("message", 5, timeout=30)
    assert sorted(o["payload"]["body"]["n"] for o in outputs) == [0, 1, 2, 3, 4]
    wait_for(lambda: harness.queued() == 0)
    worker.signal()
    assert worker.wait() == 0
    assert harness.queued() == 0  # none was left unacknowledged to come back


def entries(worker, msg: str) -> list[dict]:
    return [e for e in worker.logs if e.get("msg") == msg]


def wait_for_entry(worker, msg: str) -> dict:
    wait_for(lambda: entries(worker, msg))
    return entries(worker, msg)[0]
