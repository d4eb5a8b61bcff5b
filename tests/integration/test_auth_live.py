"""The auth helper against a real OAuth2 provider and API on 127.0.0.1 (runtime.devtools.demo.api)."""

from __future__ import annotations

import io
import json
import os
import stat
import threading

import pytest
import requests

from runtime import log
from runtime.auth import AuthorizedSession, ReauthRequired
from runtime.auth.use import credential_use
from runtime.devtools.credentials_file import CredentialsFile
from runtime.errors import ConfigError
from tests.helpers import demo_credential as credential
from tests.helpers import run_cli


def test_fifty_threads_hitting_401_at_once_cause_exactly_one_refresh(demo_api, auth_cache):
    creds = credential(demo_api)
    demo_api.book.expire_all()
    saved: list[dict] = []
    barrier = threading.Barrier(50)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        # One session per thread, as worker threads each build their own ctx.http.
        http = AuthorizedSession(
            credential_use(creds, cache=auth_cache, key="acct-1"), on_keys=saved.append
        )
        barrier.wait()
        try:
            results.append(http.get("records", params={"page_size": 1}).status_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stats = demo_api.stats()
    assert errors == []
    assert results == [200] * 50
    assert stats["token_calls"] == 1
    assert stats["reused_refresh_tokens"] == 0
    assert len(saved) == 1
    assert stats["unauthorized"] >= 1


def test_one_session_shared_by_fifty_threads(demo_api, auth_cache):
    creds = credential(demo_api)
    demo_api.book.expire_all()
    saved: list[dict] = []
    http = AuthorizedSession(credential_use(creds, cache=auth_cache), on_keys=saved.append)
    barrier = threading.Barrier(50)
    codes: list[int] = []

    def worker() -> None:
        barrier.wait()
        codes.append(http.get("me").status_code)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [200] * 50
    assert demo_api.stats()["token_calls"] == 1


def test_a_hundred_rotations_in_a_row_never_reuse_a_refresh_token(demo_api, auth_cache, tmp_path):
    store = CredentialsFile(tmp_path / "credentials.json")
    store.path.write_text(json.dumps({"demo": credential(demo_api)}))
    for _ in range(100):
        demo_api.book.expire_all()
        http = AuthorizedSession(
            credential_use(store.load("demo"), cache=auth_cache, reload=lambda: store.load("demo")),
            on_keys=lambda keys: store.save("demo", keys),
        )
        assert http.get("me").status_code == 200
    stats = demo_api.stats()
    assert stats["token_calls"] == 100
    assert stats["reused_refresh_tokens"] == 0
    # What is on disk works: a brand-new process state refreshes with it.
    demo_api.book.expire_all()
    fresh_cache_session = AuthorizedSession(
        store.load("demo"), on_keys=lambda keys: store.save("demo", keys)
    )
    assert fresh_cache_session.get("me").status_code == 200


def test_two_processes_sharing_a_rotating_credential_never_surface_invalid_grant(
    demo_api, tmp_path
):
    from runtime.auth.cache import CredentialCache

    store = CredentialsFile(tmp_path / "credentials.json")
    store.path.write_text(json.dumps({"demo": credential(demo_api)}))

    def process_session(cache):
        # What one worker process has: its own cache, the shared store, and its stale cfg.
        return AuthorizedSession(
            credential_use(
                store.load("demo"), cache=cache, reload=lambda: store.load("demo"), key="acct"
            ),
            on_keys=lambda keys: store.save("demo", keys),
        )

    first, second = CredentialCache(), CredentialCache()
    stale_second = process_session(second)  # loaded before the first process refreshes
    demo_api.book.expire_all()
    assert process_session(first).get("me").status_code == 200  # rotates and saves
    demo_api.book.expire_all()
    assert stale_second.get("me").status_code == 200  # reloads instead of replaying
    stats = demo_api.stats()
    assert stats["reused_refresh_tokens"] == 0
    assert stats["token_calls"] == 2


def test_always_mode_refreshes_once_per_message(demo_api, auth_cache):
    creds = credential(demo_api, refresh="always")
    saved: list[dict] = []
    for _ in range(5):  # five messages, three calls each
        http = AuthorizedSession(
            credential_use(creds, cache=auth_cache, key="ms"), on_keys=saved.append
        )
        for _ in range(3):
            assert http.get("me").status_code == 200
    assert demo_api.stats()["token_calls"] == 5
    assert demo_api.stats()["reused_refresh_tokens"] == 0
    assert len({keys["refreshToken"] for keys in saved}) == 5


def test_different_credentials_do_not_wait_for_each_other(demo_api, auth_cache):
    slow_started = threading.Event()
    release = threading.Event()

    def slow_refresh(creds):
        slow_started.set()
        release.wait(10)
        return {"access_token": "never-used"}

    slow_creds = credential(demo_api, name="slow")
    fast_creds = credential(demo_api, name="fast")
    demo_api.book.expire_all()
    slow = AuthorizedSession(
        credential_use(slow_creds, cache=auth_cache, refresh_credentials=slow_refresh, key="slow"),
        on_keys=lambda k: None,
    )
    fast = AuthorizedSession(
        credential_use(fast_creds, cache=auth_cache, key="fast"), on_keys=lambda k: None
    )
    blocked = threading.Thread(target=lambda: _swallow(lambda: slow.get("me")))
    blocked.start()
    assert slow_started.wait(5)
    assert fast.get("me").status_code == 200
    assert blocked.is_alive()  # the other credential's refresh is still held up
    release.set()
    blocked.join(10)


def _swallow(call):
    try:
        call()
    except Exception:
        pass


def test_a_replayed_refresh_token_is_reauth(demo_api, auth_cache):
    tokens = demo_api.consented_tokens()
    demo_api.book.expire_all()
    first = AuthorizedSession(
        credential_use(credential(demo_api, tokens), cache=auth_cache, key="a"),
        on_keys=lambda k: None,
    )
    assert first.get("me").status_code == 200
    # Another process still holds the old, already-rotated refresh token.
    demo_api.book.expire_all()
    stale = AuthorizedSession(
        credential_use(credential(demo_api, tokens), key="b"), on_keys=lambda k: None
    )
    with pytest.raises(ReauthRequired, match="must reconnect"):
        stale.get("me")


def test_credentials_file_writes_back_atomically_with_mode_0600(tmp_path, demo_api, auth_cache):
    path = tmp_path / "credentials.json"
    entry = credential(demo_api)
    entry["clientSecret"] = "${DEMO_SECRET}"
    path.write_text(json.dumps({"demo": entry, "other": {"type": "bearer", "token": "t-1"}}))
    store = CredentialsFile(path, env={"DEMO_SECRET": "demo-secret"})
    demo_api.book.expire_all()
    http = AuthorizedSession(
        credential_use(store.load("demo"), cache=auth_cache),
        on_keys=lambda k: store.save("demo", k),
    )
    assert http.get("me").status_code == 200
    written = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert written["demo"]["clientSecret"] == "${DEMO_SECRET}"  # the env secret stays out
    assert written["demo"]["refreshToken"] == http.credentials.refresh_token
    assert written["other"] == {"type": "bearer", "token": "t-1"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".credentials")] == []


def test_credentials_file_missing_variable_is_a_clear_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"xero": {"type": "bearer", "token": "${XERO_TOKEN}"}}))
    with pytest.raises(ConfigError) as caught:
        CredentialsFile(path, env={}).load("xero")
    assert "xero.token refers to ${XERO_TOKEN}, which is not set" in str(caught.value)
    with pytest.raises(ConfigError, match="no credential named 'nope' \\(entries: xero\\)"):
        CredentialsFile(path, env={}).load("nope")


def test_a_crash_while_writing_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    original = {"a": {"type": "bearer", "token": "t-1"}}
    path.write_text(json.dumps(original))
    store = CredentialsFile(path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.save("a", {"type": "bearer", "token": "t-2"})
    assert json.loads(path.read_text()) == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.json.lock"]


def test_login_runs_the_pkce_flow_and_saves_the_tokens(tmp_path, demo_api):
    path = tmp_path / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "demo": {
                    "type": "oauth2",
                    "clientId": "demo-client",
                    "clientSecret": "demo-secret",
                    "authorizeUrl": f"{demo_api.url}/oauth/authorize",
                    "tokenUrl": f"{demo_api.url}/oauth/token",
                    "scopes": ["records.read"],
                }
            }
        )
    )
    import subprocess
    import sys

    from tests.helpers import ROOT

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime",
            "auth",
            "login",
            "demo",
            "--credentials",
            str(path),
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = None
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip().startswith("http"):
            url = line.strip()
            break
    assert url is not None
    assert "code_challenge_method=S256" in url
    # The "browser": the provider consents and redirects to the loopback callback.
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Signed in" in out
    entry = json.loads(path.read_text())["demo"]
    assert entry["refreshToken"].startswith("rt-")
    assert entry["accessToken"].startswith("at-")
    assert entry["refreshToken"] not in out + err
    assert demo_api.stats()["grants"] == {"authorization_code": 1}


def test_login_with_a_wrong_client_fails_clearly(tmp_path, demo_api):
    path = tmp_path / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "demo": {
                    "type": "oauth2",
                    "clientId": "someone-else",
                    "authorizeUrl": f"{demo_api.url}/oauth/authorize",
                    "tokenUrl": f"{demo_api.url}/oauth/token",
                }
            }
        )
    )
    result = run_cli("auth", "login", "demo", "--credentials", str(path), "--timeout", "1")
    assert result.returncode == 1
    assert "no sign-in arrived within 1 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_token_or_secret_reaches_the_logs(demo_api, auth_cache):
    stream = io.StringIO()
    log.configure(fmt="json", level="debug", stream=stream)
    try:
        tokens = demo_api.consented_tokens()
        demo_api.book.expire_all()
        saved: list[dict] = []
        http = AuthorizedSession(
            credential_use(credential(demo_api, tokens), cache=auth_cache), on_keys=saved.append
        )
        http.get("me")
        demo_api.book.expire_all()
        http.get("me")
        stale = AuthorizedSession(credential(demo_api, tokens), on_keys=saved.append)
        demo_api.book.expire_all()
        with pytest.raises(ReauthRequired) as caught:
            stale.get("me")
    finally:
        log.configure(fmt="json", level="warning", stream=io.StringIO())
    text = stream.getvalue() + str(caught.value)
    assert "token_refreshed" in text
    secrets_seen = {tokens["access_token"], tokens["refresh_token"], "demo-secret"}
    for keys in saved:
        secrets_seen |= {keys["accessToken"], keys["refreshToken"]}
    for secret in secrets_seen:
        assert secret not in text
