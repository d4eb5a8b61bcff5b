"""The rules that let processes share one credential, without a broker or a real lock store."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from runtime.auth import AuthorizedSession, CredentialLockUnavailable, KeysConflict, ReauthRequired
from runtime.auth.cache import CredentialCache, Sharing, Slot, fingerprint
from runtime.auth.credentials import Credentials, KeysUpdate, keys_version
from runtime.auth.file_lock import FileLock
from runtime.auth.lock_store import lock_from_url
from runtime.auth.locks import IN_PROCESS, SharedKeys
from runtime.auth.slots import refresh_once
from runtime.auth.use import credential_use
from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.demo.tokens import GrantRefused, ProviderSettings, TokenBook
from runtime.devtools.localplatform.api_server import PlatformApiServer
from runtime.errors import ConfigError
from tests.helpers import ROOT

TOKEN_URL = "https://login.example.com/token"
API = "https://api.example.com"
LATER = datetime.now(UTC) + timedelta(hours=1)


def creds(access: str, refresh: str, expires_at: datetime | None = LATER) -> Credentials:
    data = {
        "type": "oauth2",
        "clientId": "c",
        "clientSecret": "s3cret",
        "tokenUrl": TOKEN_URL,
        "accessToken": access,
        "refreshToken": refresh,
    }
    if expires_at is not None:
        data["expiresAt"] = expires_at.isoformat()
    return Credentials.parse(data)


class FakeLock:
    """A lock store in memory: counts holds, keeps what is remembered."""

    where = "memory"

    def __init__(self, shared: SharedKeys | None = None) -> None:
        self.shared = shared
        self.holds = 0

    @contextlib.contextmanager
    def hold(self, key):
        self.holds += 1
        yield

    def latest(self, key):
        return self.shared

    def remember(self, key, shared):
        self.shared = shared
        return True

    def check(self):
        return None


class Calls:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen: list[Credentials] = []

    def __call__(self, credentials):
        self.seen.append(credentials)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def sharing(lock=None, stored=None):
    return Sharing(key="account:1", lock=lock or FakeLock(), reload=lambda: stored)


def test_nobody_refreshed_yet_so_this_process_refreshes_and_says_what_it_replaces():
    seen = creds("a1", "r1")
    lock = FakeLock()
    saved: list = []
    call = Calls({"access_token": "a2", "refresh_token": "r2"})
    result = refresh_once(
        Slot(seen), seen, call=call, on_keys=saved.append, sharing=sharing(lock, seen)
    )
    assert result.minted
    assert result.credentials.refresh_token == "r2"
    assert call.seen == [seen]
    [keys] = saved
    assert isinstance(keys, KeysUpdate)
    assert keys.replaces == keys_version(seen)
    assert lock.holds == 1
    assert lock.shared.keys["refreshToken"] == "r2"
    assert lock.shared.replaced == (fingerprint(seen),)


def test_another_replica_refreshed_so_its_tokens_are_used_without_a_token_call():
    seen = creds("a1", "r1")
    theirs = creds("a2", "r2")
    call = Calls()
    result = refresh_once(
        Slot(seen), seen, call=call, on_keys=pytest.fail, sharing=sharing(stored=theirs)
    )
    assert not result.minted
    assert result.credentials.access_token == "a2"
    assert call.seen == []


def test_the_lock_stores_copy_is_taken_when_it_succeeds_ours_without_asking_the_platform():
    seen = creds("a1", "r1")
    newest = creds("a3", "r3")
    lock = FakeLock(SharedKeys(newest.to_keys(), ("x", fingerprint(seen)), saved=True))

    def reload():
        raise AssertionError("the platform was asked although the lock store knew")

    result = refresh_once(
        Slot(seen),
        seen,
        call=Calls(),
        on_keys=pytest.fail,
        sharing=Sharing("account:1", lock, reload),
    )
    assert result.credentials.refresh_token == "r3"


def test_keys_adopted_from_the_lock_store_that_the_platform_never_got_are_saved_there():
    seen = creds("a1", "r1")
    newest = creds("a3", "r3")
    lock = FakeLock(SharedKeys(newest.to_keys(), (fingerprint(seen),)))  # refresher died
    saved: list = []
    result = refresh_once(
        Slot(seen), seen, call=Calls(), on_keys=saved.append, sharing=sharing(lock, seen)
    )
    assert result.credentials.refresh_token == "r3"
    [keys] = saved
    assert keys["refreshToken"] == "r3"
    assert keys.replaces == keys_version(seen)  # what the platform still holds
    assert keys.kept_by == "memory"
    assert lock.shared.saved  # the next replica does not save them again


def test_adopted_keys_the_platform_still_cannot_take_stay_marked_unsaved():
    seen = creds("a1", "r1")
    newest = creds("a3", "r3")
    lock = FakeLock(SharedKeys(newest.to_keys(), (fingerprint(seen),)))

    def platform_down(keys):
        keys.pending = True  # what the worker's saver reports: retried in the background

    result = refresh_once(
        Slot(seen), seen, call=Calls(), on_keys=platform_down, sharing=sharing(lock, seen)
    )
    assert result.credentials.refresh_token == "r3"
    assert not lock.shared.saved


def test_a_refresh_kept_by_the_lock_store_is_marked_saved_once_the_platform_has_it():
    seen = creds("a1", "r1")
    lock = FakeLock()
    saved: list = []
    refresh_once(
        Slot(seen),
        seen,
        call=Calls({"access_token": "a2", "refresh_token": "r2"}),
        on_keys=saved.append,
        sharing=sharing(lock, seen),
    )
    assert saved[0].kept_by == "memory"  # in the lock store before the platform was asked
    assert lock.shared.saved


def test_a_lock_store_copy_of_another_grant_is_not_taken():
    seen = creds("a1", "r1")
    other_grant = creds("a9", "r9")
    lock = FakeLock(SharedKeys(other_grant.to_keys(), ("unrelated",)))
    call = Calls({"access_token": "a2", "refresh_token": "r2"})
    result = refresh_once(
        Slot(seen), seen, call=call, on_keys=[].append, sharing=sharing(lock, seen)
    )
    assert call.seen == [seen]
    assert result.credentials.refresh_token == "r2"
    assert lock.shared.replaced == (fingerprint(seen),)  # the record starts a new lineage


def test_an_expired_stored_token_is_refreshed_from_the_stored_refresh_token():
    seen = creds("a1", "r1", expires_at=datetime.now(UTC) - timedelta(minutes=10))
    theirs = creds("a2", "r2", expires_at=datetime.now(UTC) - timedelta(seconds=5))
    call = Calls({"access_token": "a3", "refresh_token": "r3"})
    saved: list = []
    refresh_once(Slot(seen), seen, call=call, on_keys=saved.append, sharing=sharing(stored=theirs))
    assert [c.refresh_token for c in call.seen] == ["r2"]
    assert saved[0].replaces == keys_version(theirs)


def test_a_store_behind_this_process_is_not_taken_for_newer():
    seen = creds("a2", "r2")
    stale = creds("a1", "r1", expires_at=LATER - timedelta(minutes=30))
    call = Calls({"access_token": "a3", "refresh_token": "r3"})
    refresh_once(Slot(seen), seen, call=call, on_keys=[].append, sharing=sharing(stored=stale))
    assert [c.refresh_token for c in call.seen] == ["r2"]


def test_after_invalid_grant_no_other_refresh_token_is_tried():
    seen = creds("a1", "r1")
    lock = FakeLock(SharedKeys(seen.to_keys(), ("older",)))
    refused = ReauthRequired("refused (invalid_grant)")
    call = Calls(refused)
    slot = Slot(seen)
    # The platform holds a token of the same lineage (an older one): never replayed.
    older = creds("a0", "r0")
    lock.shared = SharedKeys(seen.to_keys(), (fingerprint(older),))
    with pytest.raises(ReauthRequired):
        refresh_once(
            slot, seen, call=call, on_keys=pytest.fail, sharing=Sharing("k", lock, lambda: older)
        )
    assert len(call.seen) == 1
    with pytest.raises(ReauthRequired):  # and it fails fast for a while, without a call
        refresh_once(
            slot, seen, call=call, on_keys=pytest.fail, sharing=Sharing("k", lock, lambda: older)
        )
    assert len(call.seen) == 1


def test_after_invalid_grant_a_credential_the_user_reconnected_is_taken_as_is():
    seen = creds("a1", "r1")
    reconnected = creds("n1", "nr1")
    lock = FakeLock(SharedKeys(seen.to_keys(), ()))
    call = Calls(ReauthRequired("refused"))
    result = refresh_once(
        Slot(seen),
        seen,
        call=call,
        on_keys=pytest.fail,
        sharing=Sharing("k", lock, lambda: reconnected),
    )
    assert result.credentials.refresh_token == "nr1"
    assert not result.minted
    assert len(call.seen) == 1


def test_a_save_conflict_keeps_the_stored_keys_and_moves_to_them():
    seen = creds("a1", "r1")
    theirs = creds("t1", "tr1")
    reads = iter([seen, theirs])  # before the refresh, then after the conflict
    lock = FakeLock()
    slot = Slot(seen)

    def save(keys):
        raise RuntimeError("could not deliver") from KeysConflict("holds other keys")

    with pytest.raises(RuntimeError):
        refresh_once(
            slot,
            seen,
            call=Calls({"access_token": "a2", "refresh_token": "r2"}),
            on_keys=save,
            sharing=Sharing("k", lock, lambda: next(reads)),
        )
    assert slot.current.refresh_token == "tr1"
    assert slot.unsaved is None
    assert lock.shared.keys["refreshToken"] == "tr1"


def test_keys_that_could_not_be_saved_are_saved_before_any_further_refresh():
    seen = creds("a1", "r1")
    slot = Slot(seen)
    attempts: list = []

    def flaky_save(keys):
        attempts.append(keys)
        if len(attempts) == 1:
            raise RuntimeError("platform down")

    call = Calls({"access_token": "a2", "refresh_token": "r2"})
    shared = sharing(stored=seen)
    with pytest.raises(RuntimeError):
        refresh_once(slot, seen, call=call, on_keys=flaky_save, sharing=shared)
    result = refresh_once(slot, seen, call=call, on_keys=flaky_save, sharing=shared)
    assert result.credentials.refresh_token == "r2"
    assert len(call.seen) == 1  # the rotated token was saved, not fetched again
    assert [k["refreshToken"] for k in attempts] == ["r2", "r2"]


def test_a_stale_cfg_maps_to_the_credentials_slot_not_a_new_one():
    cache = CredentialCache()
    first = creds("a1", "r1")
    slot = cache.slot("account:1", first)
    slot.take(creds("a2", "r2"), minted=True)
    slot.take(creds("a3", "r3"), minted=False)
    assert cache.slot("account:1", first) is slot  # the cfg read at start-up
    assert cache.slot("account:1", creds("x", "y")) is not slot  # the user reconnected


def behind_another_replica(theirs: Credentials) -> AuthorizedSession:
    """A session on an old token, whose store holds the tokens another replica refreshed."""
    return AuthorizedSession(
        credential_use(creds("mine", "my-refresh"), cache=CredentialCache(), reload=lambda: theirs),
        on_keys=lambda keys: None,
    )


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_tokens_from_another_replica_that_are_refused_get_one_more_refresh():
    theirs = creds("theirs", "their-refresh")
    responses.get(f"{API}/me", status=401)  # ours, expired
    responses.get(f"{API}/me", status=401)  # theirs, revoked meanwhile
    responses.post(TOKEN_URL, json={"access_token": "fresh", "refresh_token": "fresh-r"})
    responses.get(f"{API}/me", json={"ok": True})
    http = behind_another_replica(theirs)
    assert http.get(f"{API}/me").json() == {"ok": True}
    bearers = [
        c.request.headers.get("Authorization") for c in responses.calls if c.request.method == "GET"
    ]
    assert bearers == ["Bearer mine", "Bearer theirs", "Bearer fresh"]
    [token_call] = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert "refresh_token=their-refresh" in token_call.request.body


@responses.activate(registry=responses.registries.OrderedRegistry)
def test_a_fresh_token_refused_after_that_is_an_error_not_a_loop():
    theirs = creds("theirs", "their-refresh")
    responses.get(f"{API}/me", status=401)  # ours
    responses.get(f"{API}/me", status=401)  # theirs
    responses.post(TOKEN_URL, json={"access_token": "fresh", "refresh_token": "fresh-r"})
    responses.get(f"{API}/me", status=401)  # even a token minted just now
    http = behind_another_replica(theirs)
    with pytest.raises(ReauthRequired):
        http.get(f"{API}/me")
    assert len(responses.calls) == 4  # three sends, one token call


def test_the_credentials_file_refuses_keys_that_replace_other_tokens(tmp_path):
    store = CredentialsFile(tmp_path / "c.json")
    old = creds("a1", "r1").to_keys()
    store.path.write_text(json.dumps({"demo": old}))
    mine = creds("a2", "r2").to_keys()
    theirs = creds("a3", "r3").to_keys()
    store.save("demo", theirs, replaces=keys_version(old))
    with pytest.raises(KeysConflict, match="another process saved"):
        store.save("demo", mine, replaces=keys_version(old))
    store.save("demo", theirs, replaces=keys_version(old))  # the same save again is fine
    assert json.loads(store.path.read_text())["demo"]["refreshToken"] == "r3"


def test_the_local_accounts_api_compares_what_a_save_replaces():
    server = PlatformApiServer(username="u", password="p").start()
    try:
        old = creds("a1", "r1").to_keys()
        server.add_step("f", "s", {"config": {"_account": "acc", **old, "url": "/x"}})

        def put(keys, replaces):
            return requests.put(
                f"{server.url}/v1/accounts/acc",
                json={"keys": keys},
                headers={"If-Match": f'"{replaces}"'},
                auth=("u", "p"),
                timeout=5,
            )

        mine, theirs = creds("a2", "r2").to_keys(), creds("a3", "r3").to_keys()
        assert put(theirs, keys_version(old)).status_code == 200
        assert put(mine, keys_version(old)).status_code == 412
        step = requests.get(f"{server.url}/v1/tasks/f/steps/s", auth=("u", "p"), timeout=5).json()
        assert step["config"]["refreshToken"] == "r3"  # saved keys are laid over the step's
        assert step["config"]["url"] == "/x"
    finally:
        server.stop()


def test_lock_urls_are_checked_and_never_shown_with_a_password(tmp_path):
    assert lock_from_url(None) is IN_PROCESS
    assert lock_from_url("") is IN_PROCESS
    assert lock_from_url(f"file://{tmp_path}").where == f"file://{tmp_path}"
    redis_lock = lock_from_url("redis://:hunter2-pass@127.0.0.1:6390/2")
    assert redis_lock.where == "redis://127.0.0.1:6390/2"
    with pytest.raises(ConfigError, match="redis://HOST:PORT/DB"):
        lock_from_url("memcached://127.0.0.1")
    with pytest.raises(ConfigError, match="file:///DIR"):
        lock_from_url("file://")


def test_a_file_lock_excludes_another_process_until_it_lets_go(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from runtime.auth.file_lock import FileLock
                with FileLock(Path({str(tmp_path)!r})).hold("account:7"):
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = FileLock(tmp_path, wait=0.2)
        with (
            pytest.raises(CredentialLockUnavailable, match=r"for more than 0\.2 s"),
            busy.hold("account:7"),
        ):
            pass
        with FileLock(tmp_path, wait=0.2).hold("account:8"):  # another credential: no wait
            pass
        holder.kill()  # dies holding it: the kernel lets go
        holder.wait(10)
        with FileLock(tmp_path, wait=0).hold("account:7"):  # free at once: no waiting
            pass
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdin.close()
        holder.stdout.close()


def test_the_demo_provider_revokes_the_whole_grant_when_a_refresh_token_is_reused():
    book = TokenBook(ProviderSettings())
    first = book.consent()
    second = book.grant({"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                         "client_id": "demo-client", "client_secret": "demo-secret"}, None)  # fmt: skip
    assert book.access_valid(str(second["access_token"]))
    with pytest.raises(GrantRefused, match="invalid_grant"):
        book.grant({"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                    "client_id": "demo-client", "client_secret": "demo-secret"}, None)  # fmt: skip
    assert not book.access_valid(str(second["access_token"]))  # the thief's and the user's
    assert not book.refresh_token_alive(str(second["refresh_token"]))
    assert book.revoked_grants == 1


def test_the_demo_providers_grace_period_forgives_a_quick_second_use():
    book = TokenBook(ProviderSettings(reuse_grace_seconds=30))
    first = book.consent()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
            "client_id": "demo-client", "client_secret": "demo-secret"}  # fmt: skip
    one, two = book.grant(form, None), book.grant(form, None)
    assert book.refresh_token_alive(str(one["refresh_token"]))
    assert book.refresh_token_alive(str(two["refresh_token"]))
    assert book.revoked_grants == 0
