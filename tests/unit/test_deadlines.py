"""Every wait on a server has a deadline on the whole answer, also while it trickles in.

The servers here answer a byte at a time for as long as the client listens (a read timeout
never fires: every read returns something), or accept and never answer. Each call must end
with an error naming the server within its bound; the tests wait for the call to end (with
a generous margin), they do not time it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from runtime import bounded
from runtime.auth import AuthorizedSession, CredentialLockUnavailable
from runtime.auth.credentials import Credentials
from runtime.auth.errors import TokenEndpointUnavailable
from runtime.auth.redis_lock import RedisLock
from runtime.auth.token_client import request_token
from runtime.deadlines import adapter, deadline
from runtime.network import AnswerTooSlow, in_words
from runtime.platform.api import PlatformApi, PlatformApiError
from runtime.platform.object_storage import ObjectStorage, ObjectStorageError
from tests.helpers import finishes
from tests.local_http import Handler, serving

TICK = 0.05


class _Trickle(Handler):
    """``body``: a 1 MB answer, one byte per tick; ``headers``: the status line and headers
    one byte per tick; ``silent``: nothing at all."""

    def answer(self) -> None:
        mode = self.server.mode
        try:
            if mode == "silent":
                self.server.stop.wait(60)
                return
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1048576\r\n\r\n"
            )
            if mode == "headers":
                self._drip(head * 1000)
                return
            self.wfile.write(head)
            self._drip(b" " * 1048576)
        except OSError:
            return

    def _drip(self, data: bytes) -> None:
        for byte in data:
            if self.server.stop.is_set():
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(TICK)


@pytest.fixture
def trickle() -> Iterator[Any]:
    with serving(_Trickle, mode="body", stop=threading.Event()) as server:
        yield server
        server.stop.set()


def ends(call: Callable[[], Any], within: float) -> BaseException:
    """The exception ``call`` ended with, failing if it did not end or did not raise."""
    ended = finishes(call, within)
    assert ended.error is not None, "the call returned normally"
    return ended.error


@pytest.mark.parametrize("mode", ["body", "headers", "silent"])
def test_ctx_http_gives_up_on_a_trickling_or_silent_server_naming_it(trickle, mode):
    trickle.mode = mode
    session = AuthorizedSession({"type": "none"}, timeout=0.5, retries=0)
    error = ends(lambda: session.get(f"{trickle.url}/records"), within=10)
    assert isinstance(error, requests.exceptions.Timeout)
    assert trickle.host in str(error) or trickle.host in (in_words(error) or "")
    if mode != "silent":
        assert isinstance(error, AnswerTooSlow)
        assert "did not finish its answer within 0.5 s" in str(error)


def test_a_streamed_body_trickling_in_is_cut_at_the_readers_deadline(trickle):
    response = requests.get(f"{trickle.url}/file", stream=True, timeout=5)
    error = ends(
        lambda: bounded.read(response, what="the file from the API", limit=2**21, seconds=0.5),
        within=10,
    )
    assert isinstance(error, bounded.TooSlow)
    assert str(error) == "the file from the API did not finish within 0.5 s: the server is too slow"


def test_a_token_endpoint_trickling_its_answer_fails_in_time_naming_its_host(trickle):
    credential = Credentials.parse(
        {"type": "oauth2", "clientId": "c", "clientSecret": "client-secret-77",
         "refreshToken": "rt-77", "tokenUrl": f"{trickle.url}/token"}
    )  # fmt: skip
    http = requests.Session()
    http.mount("http://", adapter())
    for mode in ("body", "headers"):
        trickle.mode = mode
        error = ends(lambda: request_token(credential, http=http, timeout=1), within=10)
        assert isinstance(error, TokenEndpointUnavailable)
        assert f"the token endpoint at {trickle.host} did not finish answering within 1 s" in (
            str(error)
        )
        assert "client-secret-77" not in str(error)
        assert "rt-77" not in str(error)


def test_the_platform_api_trickling_its_answer_is_a_clear_error(trickle, monkeypatch):
    monkeypatch.setattr("runtime.platform.api.CALL_SECONDS", 0.5)
    api = PlatformApi(trickle.url, "task-user", "task-key", attempts=1)
    error = ends(lambda: api.step("flow", "step_1"), within=10)
    assert isinstance(error, PlatformApiError)
    assert f"the platform API at {trickle.host}" in str(error)
    assert "too slow" in str(error)


def test_object_storage_trickling_its_answer_is_a_clear_error(trickle, monkeypatch):
    trickle.mode = "headers"
    monkeypatch.setattr("runtime.platform.object_storage.CALL_SECONDS", 0.5)
    storage = ObjectStorage(trickle.url, "storage-token-1", flow_id="f", step_id="s")
    error = ends(lambda: storage.fetch("object-1"), within=10)
    assert isinstance(error, ObjectStorageError)
    assert f"object storage at {trickle.host}" in str(error)
    assert "too slow" in str(error)


class _Prompt(Handler):
    def answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def test_a_prompt_answer_is_not_cut_and_its_connection_is_reused():
    with serving(_Prompt) as server:
        session = AuthorizedSession({"type": "none"}, timeout=0.2)
        assert session.get(server.url).text == "ok"
        time.sleep(0.4)  # past that attempt's deadline: the kept-alive socket is left alone
        assert session.get(server.url).text == "ok"
    assert server.connections == 1


def test_a_deadline_that_passed_while_nothing_was_open_still_ends_the_exchange(trickle):
    trickle.mode = "silent"
    with (
        pytest.raises(RuntimeError, match="too late"),
        deadline(0.05, too_slow=lambda: RuntimeError("too late")),
    ):
        time.sleep(0.2)


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A TCP server that accepts connections and never answers a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(1)
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_lock_store_that_never_answers_fails_the_refresh_within_its_grace(silent_redis):
    lock = RedisLock(silent_redis, wait=60)

    def take() -> None:
        with lock.hold("account:silent"):
            raise AssertionError("held a lock nobody granted")

    # What is asserted is why it ended (the store cannot be reached, not the 60 s wait for
    # the lock running out); the bound only keeps a hang from stalling the suite.
    error = ends(take, within=30.0)
    assert isinstance(error, CredentialLockUnavailable)
    assert "cannot be reached" in str(error)
    assert "Timeout" in str(error) or "timed out" in str(error).lower()
