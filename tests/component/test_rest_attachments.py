"""The REST connector's files: uploads from attachment URLs (octet-stream and multipart
parts) and responses downloaded as attachments, with the local platform's object store as
the attachment storage and an expired token on the way."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tracemalloc

import pytest
import requests

from runtime.testing import run_step
from tests.component.rest_servers import STORE_TOKEN, answers, stored
from tests.helpers import ROOT, demo_oauth

FILE = bytes(range(256)) * 4096  # 1 MiB: spooled to disk on the way


def upload(api, body, **extra):
    """A step that posts a file from a URL as application/octet-stream to /api/upload."""
    return {
        **demo_oauth(api),
        "method": "POST",
        "url": "/upload",
        "bodyType": "application/octet-stream",
        "uploadFile": True,
        "body": body,
        **extra,
    }


def call(cfg, msg=None):
    return run_step("httpRequest", msg=msg or {"body": {}}, cfg=cfg, component=ROOT)


def no_secrets(events, *secrets):
    text = json.dumps([e.payload for e in events], default=str)
    for secret in secrets:
        assert secret not in text


def test_octet_stream_upload_from_an_attachment_with_an_expired_token(demo_api, store):
    url = stored(store, FILE)
    cfg = upload(demo_api, 'attachments."scan.bin".url', bodyMode="jsonata")
    demo_api.book.expire_all()
    msg = {"body": {}, "attachments": {"scan.bin": {"url": url, "size": len(FILE)}}}
    events = call(cfg, msg)
    assert [e.kind for e in events] == ["updateKeys", "data", "end"]
    got = events[1].payload["body"]["body"]
    assert got["contentType"] == "application/octet-stream"
    assert got["size"] == len(FILE)
    assert got["sha256"] == hashlib.sha256(FILE).hexdigest()
    assert demo_api.stats()["token_calls"] == 1
    no_secrets(events, STORE_TOKEN)


def test_multipart_file_parts_with_an_expired_token(demo_api, store):
    url = stored(store, FILE, "image/png")
    cfg = {
        **demo_oauth(demo_api),
        "method": "POST",
        "url": "/upload",
        "bodyType": "multipart/form-data",
        "uploadFile": True,
        "body": '{"file": {"url": attachments.pic.url, "filename": "pic.png", '
        '"knownLength": attachments.pic.size}, "caption": body.caption}',
        "bodyMode": "jsonata",
    }
    demo_api.book.expire_all()
    msg = {
        "body": {"caption": "a picture"},
        "attachments": {"pic": {"url": url, "size": len(FILE)}},
    }
    events = call(cfg, msg)
    assert [e.kind for e in events] == ["updateKeys", "data", "end"]
    parts = {p["name"]: p for p in events[1].payload["body"]["body"]["parts"]}
    assert parts["file"]["filename"] == "pic.png"
    assert parts["file"]["contentType"] == "image/png"
    assert parts["file"]["size"] == len(FILE)
    assert parts["file"]["sha256"] == hashlib.sha256(FILE).hexdigest()
    assert parts["caption"]["text"] == "a picture"
    no_secrets(events, STORE_TOKEN)


def test_files_from_other_hosts_are_read_without_the_storage_token(demo_api, store):
    with answers() as files:
        cfg = upload(demo_api, f"{files.url}/files/report.pdf?bytes=3000")
        events = call(cfg)
        assert events[0].kind == "data"
        assert events[0].payload["body"]["body"]["size"] == 3000
        assert files.authorizations == [None]


def test_an_attachment_url_that_404s_is_a_clear_error(demo_api, store):
    cfg = upload(demo_api, f"{store.url}/objects/no-such-object?storage_type=maester")
    before = demo_api.stats()["api_calls"]
    events = call(cfg)
    assert [e.kind for e in events] == ["error", "end"]
    message = events[0].payload["message"]
    assert "could not read the file at" in message and "404" in message
    assert demo_api.stats()["api_calls"] == before, "nothing was sent to the API"
    no_secrets(events, STORE_TOKEN)


def test_a_file_over_max_body_length_is_refused_before_sending(demo_api, store):
    url = stored(store, FILE)
    cfg = upload(demo_api, url, maxBodyLength="1000")
    events = call(cfg)
    assert [e.kind for e in events] == ["error", "end"]
    assert "more than the 1,000 bytes allowed" in events[0].payload["message"]


def test_download_as_attachment_with_an_expired_token(demo_api, store):
    cfg = {**demo_oauth(demo_api), "url": "/big?bytes=300000", "downloadAsAttachment": True}
    demo_api.book.expire_all()
    incoming = {"body": {}, "attachments": {"earlier.txt": {"url": "http://x/1", "size": 1}}}
    events = call(cfg, incoming)
    assert [e.kind for e in events] == ["updateKeys", "data", "end"]
    message = events[1].payload
    assert "body" not in message["body"]
    assert message["body"]["statusCode"] == 200
    new = [name for name in message["attachments"] if name != "earlier.txt"]
    assert len(new) == 1
    entry = message["attachments"][new[0]]
    assert entry["size"] == 300000
    assert entry["content-type"] == "application/octet-stream"
    assert entry["url"].startswith(store.url) and entry["url"].endswith("?storage_type=maester")
    fetched = requests.get(
        entry["url"], headers={"Authorization": f"Bearer {STORE_TOKEN}"}, timeout=10
    )
    assert fetched.content == b"x" * 300000
    assert message["attachments"]["earlier.txt"] == incoming["attachments"]["earlier.txt"]
    no_secrets(events, STORE_TOKEN)


def test_a_downloaded_file_is_named_from_content_disposition(store):
    with answers() as files:
        cfg = {
            "type": "none",
            "url": f"{files.url}/files/x?bytes=2048",
            "downloadAsAttachment": True,
        }
        message = call(cfg)[0].payload
    entry = message["attachments"]["report.pdf"]
    assert entry["size"] == 2048
    assert entry["content-type"] == "application/pdf"


def test_a_download_over_the_limit_is_a_clear_error_and_stores_nothing(demo_api, store):
    cfg = {**demo_oauth(demo_api), "url": "/big?bytes=5000", "downloadAsAttachment": True,
           "maxContentLength": "1000"}  # fmt: skip
    events = call(cfg)
    assert [e.kind for e in events] == ["error", "end"]
    assert "more than the 1,000 bytes allowed" in events[0].payload["message"]
    assert store.objects == {}


def test_download_without_attachment_storage_says_what_to_do(demo_api, monkeypatch):
    monkeypatch.delenv("ELASTICIO_OBJECT_STORAGE_URI", raising=False)
    cfg = {**demo_oauth(demo_api), "url": "/big?bytes=50", "downloadAsAttachment": True}
    events = call(cfg)
    assert [e.kind for e in events] == ["error", "end"]
    assert "no attachment storage is configured" in events[0].payload["message"]


SERVERS = """
import sys, time
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from runtime.devtools.localplatform.object_store import ObjectStore
api = DemoApi(ProviderSettings(access_lifetime=3600)).start()
store = ObjectStore(sys.argv[1]).start()
print(api.url, store.url, api.consented_tokens()["access_token"], flush=True)
time.sleep(600)
"""


@pytest.fixture
def servers_elsewhere():
    """The demo API and the object store in another process, so that only the step's own
    memory is traced here."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVERS, STORE_TOKEN], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        api_url, store_url, token = process.stdout.readline().split()
        yield api_url, store_url, token
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()


def test_files_are_streamed_never_whole_in_memory(servers_elsewhere, monkeypatch):
    api_url, store_url, token = servers_elsewhere
    monkeypatch.setenv("ELASTICIO_OBJECT_STORAGE_URI", store_url)
    monkeypatch.setenv("ELASTICIO_OBJECT_STORAGE_TOKEN", STORE_TOKEN)
    size = 40 * 1024 * 1024
    bearer = {"type": "bearer", "token": token, "baseUrl": f"{api_url}/api"}
    tracemalloc.start()
    try:
        download = call({**bearer, "url": f"/big?bytes={size}", "downloadAsAttachment": True})
        entry = next(iter(download[0].payload["attachments"].values()))
        upload = call(
            {**bearer, "method": "POST", "url": "/upload", "uploadFile": True,
             "bodyType": "application/octet-stream", "body": entry["url"]}
        )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert entry["size"] == size
    received = upload[0].payload["body"]["body"]
    assert received["size"] == size
    assert received["sha256"] == hashlib.sha256(b"x" * size).hexdigest()
    assert peak < 8 * 1024 * 1024, f"{peak:,} bytes held at the peak for a {size:,}-byte file"
