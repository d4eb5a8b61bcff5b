from __future__ import annotations


def test_a_message_goes_through_the_worker(step):
    harness = step("work")
    worker = harness.start_worker()
    message_id = harness.send({"hello": "world"})
    [out] = harness.take("message")
    assert out["payload"]["body"] == {"hello": "world"}
    assert out["headers"]["parentMessageId"] == message_id
    assert harness.empty("error")
    worker.signal()
    assert worker.wait() == 0
