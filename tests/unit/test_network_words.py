"""A request that got no answer is one line naming the host and the cause, wherever it shows."""

from __future__ import annotations

import time

import pytest
import requests

from runtime.network import in_words
from runtime.step.events import error_payload
from tests.local_http import Handler, serving


def failure(url: str, timeout: float = 5) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as caught:
        requests.get(url, timeout=timeout)
    return caught.value


def test_a_refused_connection_names_host_and_cause_in_the_error_event():
    error = failure("http://127.0.0.1:9/items")
    expected = "could not connect to 127.0.0.1:9 (connection refused)"
    assert in_words(error) == expected
    assert error_payload(error)["message"] == expected
    assert error_payload(error)["name"] == "ConnectionError"  # what step code catches stays


class Slow(Handler):
    def answer(self) -> None:
        time.sleep(1.0)
        self.send_response(204)
        self.end_headers()


def test_an_answer_that_does_not_come_in_time():
    with serving(Slow) as server:
        error = failure(f"{server.url}/slow", timeout=0.2)
    assert in_words(error) == f"{server.host} did not answer in time (timed out)"


def test_an_unknown_host():
    error = failure("http://no-such-host.invalid/x")
    assert in_words(error) == "could not connect to no-such-host.invalid (unknown host)"


def test_other_errors_keep_their_own_message():
    assert in_words(ValueError("bad input")) is None
    assert error_payload(ValueError("bad input"))["message"] == "bad input"
