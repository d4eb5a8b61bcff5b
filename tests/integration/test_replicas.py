"""Replicas sharing one OAuth2 account: one refresh per expiry, and the grant survives.

Every test runs against the demo provider with reuse detection on: presenting a refresh
token a second time revokes the whole grant, as Auth0, Okta and oidc-provider do. The
token endpoint is slow (a few hundred ms, like real ones) so that every replica meets the
expired token while the first one is still refreshing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from runtime.auth import AuthorizedSession, CredentialLockUnavailable
from runtime.auth.cache import CredentialCache
from runtime.auth.redis_lock import RedisLock
from runtime.auth.use import credential_use
from runtime.devtools.demo.api import DemoApi
from runtime.devtools.demo.tokens import ProviderSettings
from tests.helpers import ROOT, demo_credential, demo_oauth, wait_for

ROUNDS = 2
MESSAGES_PER_REPLICA = 2


@pytest.fixture
def provider():
    """A strict provider: rotation, reuse detection, and a token endpoint that takes 0.3 s."""
    api = DemoApi(ProviderSettings(access_lifetime=300, token_delay=0.3)).start()
    yield api
    api.stop()


def http_step(step, provider, **flow):
    config = {**demo_oauth(provider), "method": "GET", "url": "/records/{{body.id}}"}
    config.update(flow.pop("extra_config", {}))
    return step("httpRequest", component=ROOT, config=config, **flow)


def start_replicas(harness, count: int, **env: str):
    workers = [harness.start_worker(wait=False, **env) for _ in range(count)]
    for worker in workers:
        worker.wait_for_log("worker_ready", timeout=60)
    return workers


def stored_refresh_token(platform_api, harness) -> str:
    keys = platform_api.state.accounts[harness.flow.account]
    return keys["oauth"]["refresh_token"]


def assert_one_refresh_per_expiry(step, provider, platform_api, replicas: int, lock_url: str):
    harness = http_step(step, provider, prefetch=MESSAGES_PER_REPLICA)
    workers = start_replicas(harness, replicas, ELASTICIO_CREDENTIAL_LOCK_URL=lock_url)
    per_round = replicas * MESSAGES_PER_REPLICA
    for round_ in range(1, ROUNDS + 1):
        provider.book.expire_all()  # every replica's token is now expired, at once
        for number in range(per_round):
            harness.send({"id": number + 1})
        results = harness.take("message", per_round, timeout=60)
        assert sorted(r["payload"]["body"]["body"]["id"] for r in results) == list(
            range(1, per_round + 1)
        )
        assert provider.stats()["token_calls"] == round_, f"round {round_}"
    stats = provider.stats()
    assert stats["expiries_met"] == ROUNDS
    assert stats["invalid_grants"] == 0
    assert stats["reused_refresh_tokens"] == 0
    assert stats["revoked_grants"] == 0
    assert harness.empty("error")
    assert provider.book.refresh_token_alive(stored_refresh_token(platform_api, harness))
    busy = [w for w in workers if "http_response" in w.text]
    assert len(busy) == replicas, "every replica took messages"


@pytest.mark.parametrize("replicas", [2, 3, 5])
def test_replicas_on_redis_make_one_token_call_per_expiry(
    step, provider, platform_api, redis_url, replicas
):
    assert_one_refresh_per_expiry(step, provider, platform_api, replicas, redis_url)


def test_replicas_on_one_machine_with_a_file_lock(step, provider, platform_api, tmp_path):
    lock_url = f"file://{tmp_path}/credential-locks"
    assert_one_refresh_per_expiry(step, provider, platform_api, 3, lock_url)
    assert list((tmp_path / "credential-locks").glob("credential-*.lock"))


def test_exec_processes_sharing_a_credentials_file_make_one_token_call(provider, tmp_path):
    store = tmp_path / "credentials.json"
    store.write_text(json.dumps({"demo": demo_credential(provider)}))
    (tmp_path / "cfg.json").write_text(json.dumps({"method": "GET", "url": "/records/3"}))
    (tmp_path / "msg.json").write_text(json.dumps({"body": {}}))
    provider.book.settings.token_delay = 1.5  # every process meets the expired token
    provider.book.expire_all()
    command = [
        sys.executable, "-m", "runtime", "exec", "httpRequest",
        "--credentials", str(store), "--credential", "demo",
        "--cfg", str(tmp_path / "cfg.json"), "--msg", str(tmp_path / "msg.json"),
        "--log-format", "json",
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(5)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        data = [json.loads(line) for line in out.splitlines() if '"event": "data"' in line]
        assert data[0]["payload"]["body"]["statusCode"] == 200
    stats = provider.stats()
    assert stats["token_calls"] == 1
    assert stats["invalid_grants"] == 0
    saved = json.loads(store.read_text())["demo"]
    assert provider.book.refresh_token_alive(saved["refreshToken"])
    assert list(tmp_path.glob(".credentials.json.refresh-*.lock"))


def test_an_unreachable_lock_store_fails_the_message_without_refreshing(step, provider):
    harness = http_step(step, provider)
    worker = harness.start_worker(ELASTICIO_CREDENTIAL_LOCK_URL="redis://127.0.0.1:1/0")
    assert worker.wait_for_log("credential_lock_unreachable")["store"] == "redis://127.0.0.1:1/0"
    provider.book.expire_all()
    harness.send({"id": 4})
    [error] = harness.take("error", timeout=30)
    message = error["payload"]["error"]["message"]
    assert "redis://127.0.0.1:1/0 cannot be reached" in message
    assert "not refreshed" in message
    assert error["payload"]["errorInput"]["body"] == {"id": 4}  # the input travels with it
    assert provider.stats()["token_calls"] == 0
    assert harness.empty("message")
    assert harness.queued() == 0  # rejected, as an error before end is: not left unacked


def test_an_unreachable_lock_store_rebounds_when_the_step_asks_for_it(step, provider):
    harness = http_step(step, provider, extra_config={"reboundOnRateLimit": True})
    harness.start_worker(
        ELASTICIO_CREDENTIAL_LOCK_URL="redis://127.0.0.1:1/0",
        ELASTICIO_REBOUND_INITIAL_EXPIRATION="600000",
    )
    provider.book.expire_all()
    harness.send({"id": 5})
    [rebound] = harness.take("rebound", timeout=30)
    assert rebound["payload"]["body"] == {"id": 5}
    assert "cannot be reached" in rebound["properties"].headers["reboundReason"]
    assert harness.empty("error")
    assert provider.stats()["token_calls"] == 0


def _kill_the_holder_between_token_call_and_save(step, provider, platform_api, env):
    harness = http_step(step, provider)
    first = harness.start_worker(**env)
    gate = platform_api.state.account_gate = threading.Event()
    try:
        provider.book.expire_all()
        harness.send({"id": 1})
        # Its token call is done, its save not.
        wait_for(
            lambda: platform_api.state.accounts_waiting >= 1,
            timeout=30,
            what="the first replica's save of the new keys",
        )
        platform_api.state.account_gate = None  # only the first save is held, and then lost
        second = harness.start_worker(**env)
        harness.send({"id": 2})
        first.process.kill()
        first.wait()
        # The second replica finishes message 2, then message 1, which the broker redelivers.
        results = harness.take("message", 2, timeout=60)
        assert sorted(r["payload"]["body"]["body"]["id"] for r in results) == [1, 2]
        assert harness.empty("error")
        return harness, second
    finally:
        gate.set()


@pytest.mark.parametrize("store", ["redis", "file"])
def test_a_holder_killed_mid_refresh_loses_nothing(
    step, provider, platform_api, redis_url, tmp_path, store
):
    if store == "redis":
        env = {"ELASTICIO_CREDENTIAL_LOCK_URL": redis_url, "ELASTICIO_CREDENTIAL_LOCK_LEASE": "1"}
    else:
        env = {"ELASTICIO_CREDENTIAL_LOCK_URL": f"file://{tmp_path}/locks"}
    harness, second = _kill_the_holder_between_token_call_and_save(
        step, provider, platform_api, env
    )
    stats = provider.stats()
    # The dead holder's new keys were in the lock store before its save began: the other
    # replica took them once the lock was free, so even a provider without a grace period
    # is fine; and it saved them on the platform, which the holder never did.
    assert stats["token_calls"] == 1
    assert stats["invalid_grants"] == 0
    assert stats["revoked_grants"] == 0
    assert second.wait_for_log("credential_reloaded")
    assert provider.book.refresh_token_alive(stored_refresh_token(platform_api, harness))


def _replica_session(provider, redis_url, creds, key, **lock_options):
    """What one replica holds: its own cache and its own connection to the lock store."""
    lock = RedisLock(redis_url, secret="the-message-crypto-password", **lock_options)
    return AuthorizedSession(
        credential_use(creds, cache=CredentialCache(), key=key, lock=lock),
        on_keys=lambda keys: None,
    )


def test_the_lease_is_renewed_while_a_slow_token_call_runs(provider, redis_url, account_key):
    provider.book.settings.token_delay = 2.0  # four leases long
    creds = demo_credential(provider)
    key = account_key()
    first = _replica_session(provider, redis_url, creds, key, lease=0.5, wait=10)
    second = _replica_session(provider, redis_url, creds, key, lease=0.5, wait=10)
    provider.book.expire_all()
    codes: list[int] = []
    holder = threading.Thread(target=lambda: codes.append(first.get("me").status_code))
    holder.start()
    wait_for(lambda: provider.stats()["token_calls"] >= 1, timeout=10, what="the token call")
    codes.append(second.get("me").status_code)  # waits for the lock, then adopts
    holder.join(10)
    assert codes == [200, 200]
    stats = provider.stats()
    assert stats["token_calls"] == 1
    assert stats["invalid_grants"] == 0


def test_a_lock_held_past_its_lease_is_still_held_while_renewed(redis_url, account_key):
    key = account_key()
    holder = RedisLock(redis_url, lease=0.3, wait=1)
    other = RedisLock(redis_url, lease=0.3, wait=0.5)
    with holder.hold(key):
        time.sleep(1.0)  # over three leases
        with (
            pytest.raises(CredentialLockUnavailable, match="held the credential lock"),
            other.hold(key),
        ):
            pass
    with other.hold(key):  # released at once by its holder
        pass


def test_two_accounts_never_wait_on_each_other(provider, redis_url, account_key):
    held_up, release = threading.Event(), threading.Event()

    def slow_refresh(_credentials):
        held_up.set()
        release.wait(30)  # the provider takes its time for this account
        return {"access_token": "never-used"}

    lock = RedisLock(redis_url, secret="the-message-crypto-password")
    slow = AuthorizedSession(credential_use(demo_credential(provider), cache=CredentialCache(), key=account_key(), lock=lock, refresh_credentials=slow_refresh), on_keys=lambda keys: None)  # fmt: skip
    fast = _replica_session(
        provider, redis_url, demo_credential(provider, name="fast"), account_key()
    )
    provider.book.expire_all()  # both need a refresh
    holder = threading.Thread(target=lambda: _quietly(lambda: slow.get("me")), daemon=True)
    holder.start()
    assert held_up.wait(10)  # the slow account holds its lock, in its token call
    assert fast.get("me").status_code == 200  # refreshed under its own lock meanwhile
    assert holder.is_alive()  # while the other is still held up
    assert provider.stats()["token_calls"] == 1
    release.set()
    holder.join(30)


def _quietly(call):
    try:
        call()
    except Exception:
        pass
