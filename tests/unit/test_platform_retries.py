"""What the platform clients send again, and what they must not: a real server on 127.0.0.1."""

from __future__ import annotations

import pytest

from runtime.platform.api import PlatformApi, PlatformApiError
from runtime.platform.object_storage import ObjectStorage, ObjectStorageError
from runtime.worker.crypto import MessageCipher
from tests.local_http import Handler, serving

CIPHER = MessageCipher("retry-password", "0123456789abcdef")


class _Flaky(Handler):
    """Answers 503 to everything."""

    def answer(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def flaky():
    with serving(_Flaky) as server:
        yield server


def test_an_upload_to_object_storage_is_not_sent_twice_after_a_server_error(flaky):
    storage = ObjectStorage(flaky.url, "storage-token-1", flow_id="f", step_id="s")
    with pytest.raises(ObjectStorageError, match="refused POST /objects \\(503\\)"):
        storage.store(CIPHER.encrypt(b'{"big": "body"}'))
    assert flaky.counts == {"POST": 1}  # a lost answer must not store the body twice


def test_reading_from_object_storage_is_retried(flaky):
    storage = ObjectStorage(flaky.url, "storage-token-1", flow_id="f", step_id="s")
    with pytest.raises(ObjectStorageError, match="refused GET"):
        storage.fetch("object-1")
    assert flaky.counts == {"GET": 4}


def test_startup_data_is_not_posted_twice_but_saving_keys_is_retried(flaky):
    api = PlatformApi(flaky.url, "u", "p", attempts=3, delay_ms=1)
    with pytest.raises(PlatformApiError, match="503"):
        api.startup_data("flow", "POST", {"state": 1})
    with pytest.raises(PlatformApiError, match="503"):
        api.update_account("acc", {"refreshToken": "rt-1"})
    assert flaky.counts == {"POST": 1, "PUT": 3}


def test_a_platform_that_cannot_be_reached_is_named_with_the_reason():
    api = PlatformApi("http://127.0.0.1:9", "u", "p", attempts=2, delay_ms=1)
    with pytest.raises(PlatformApiError) as caught:
        api.step("flow", "step")
    assert "platform API at 127.0.0.1:9 did not answer after 2 attempts" in str(caught.value)
    assert "(connection refused)" in str(caught.value)
