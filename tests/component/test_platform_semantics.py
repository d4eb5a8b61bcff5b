"""The platform REST component's options mean what they mean there: each case uses that
component's own configuration objects (a ``reader``, its option fields, its credential form)
against real HTTP servers on 127.0.0.1 and the local platform's secrets API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lib.platform_steps import current_options, older_options
from runtime.testing import run_step, run_verify
from tests.component.rest_servers import stored
from tests.helpers import ROOT
from tests.local_http import Handler, Server, serving


def run(step: str, reader: dict[str, Any], msg: Any = None, secret: str = "open", **options):
    cfg = {"reader": reader, "secretId": secret, **options}
    return run_step(step, msg=msg or {"body": {}}, cfg=cfg, component=ROOT)


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def data(events) -> list[Any]:
    found = [e.payload for e in events if e.kind == "data"]
    assert found, [e.payload for e in events]
    return found


def quoted(text: str) -> str:
    return json.dumps(text)


class Recording(Handler):
    """Keeps every request's raw body and Authorization; 403 for the first token it sees
    when ``refuse_first_token`` is set, else 200 with a small JSON."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        server: Any = self.server
        auth = self.headers.get("Authorization")
        with server.lock:
            server.requests.append((self.path, self.headers.get("Content-Type"), raw, auth))
            first = server.first_token = server.first_token or auth
        status = 403 if server.refuse_first_token and auth == first else 200
        body = b'{"ok": true}' if status == 200 else b'{"error": "forbidden"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder(platform) -> Iterator[Server]:
    with serving(Recording, requests=[], first_token=None, refuse_first_token=False) as server:
        yield server


# --- 1. maxRedirects: N redirects followed, as axios follows them ---------------------------


@pytest.mark.parametrize("hops", [1, 2, 5])
def test_max_redirects_n_follows_n_redirects(server, hops):
    reader = {"method": "GET", "url": quoted(f"{server.url}/redirect/{hops}")}
    answer = data(run("httpRequestAxios", reader, maxRedirects=str(hops)))[0]
    assert answer["body"]["responseBody"] == {"arrived": True}
    events = run("httpRequestAxios", reader, maxRedirects=str(hops - 1))
    assert kinds(events) == ["error", "end"]  # one redirect more than allowed


def test_unset_the_current_steps_follow_redirects_as_axios_does(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/redirect/15")}
    answer = data(run("httpRequestAxios", reader))[0]
    assert answer["body"]["responseBody"] == {"arrived": True}


def test_unset_timeouts_are_what_each_generation_of_steps_uses():
    current = current_options({}, oauth2=False)
    assert (current.timeout, current.max_redirects) == (60.0, 21)
    given = current_options({"requestTimeoutPeriod": "5000", "maxRedirects": "3"}, oauth2=False)
    assert (given.timeout, given.max_redirects) == (5.0, 3)
    assert older_options({}, oauth2=False).timeout == 100.0


# --- 2. maxRetries: N calls in all ----------------------------------------------------------


def test_max_retries_n_makes_n_calls_then_fails(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/status/503?retry_after=0")}
    events = run("httpRequestAxios", reader, maxRetries="3")
    assert kinds(events) == ["error", "end"]
    assert "503" in events[0].payload["message"]
    assert [p for p, _ in server.seen].count("/status/503") == 3


# --- 3. the older step refreshes a platform-held OAuth2 token on 403 too -------------------


def test_older_step_refreshes_the_platforms_oauth2_token_on_403(platform, recorder):
    recorder.refuse_first_token = True
    reader = {"method": "GET", "url": quoted(f"{recorder.url}/thing")}
    answer = data(run("httpRequestAction", reader, secret="demo"))[0]
    assert answer["body"]["statusCode"] == 200
    first, second = (auth for _, _, _, auth in recorder.requests)
    assert first != second and second.startswith("Bearer ")
    assert platform.secrets.refreshes["demo"] == 1


def test_the_current_step_takes_a_403_as_an_answer_not_a_refused_token(platform, recorder):
    recorder.refuse_first_token = True
    reader = {"method": "GET", "url": quoted(f"{recorder.url}/thing")}
    events = run("httpRequestAxios", reader, secret="demo")
    assert kinds(events) == ["error", "end"]
    assert len(recorder.requests) == 1
    assert platform.secrets.refreshes.get("demo", 0) == 0


# --- 4. an attachment that cannot be fetched is left out of the older step's form ---------


def test_older_multipart_sends_attachments_as_files_leaving_out_one_it_cannot_fetch(
    platform, store, server
):
    url = stored(store, b"invoice bytes")
    reader = {
        "method": "POST",
        "url": quoted(f"{platform.api.url}/api/upload"),
        "body": {"contentType": "multipart/form-data",
                 "formData": [{"key": "note", "value": '"see attached"'}]},
    }  # fmt: skip
    msg = {"body": {}, "attachments": {"gone.pdf": {"url": f"{server.url}/status/404"},
                                       "invoice.pdf": {"url": url, "size": 13}}}  # fmt: skip
    events = run("httpRequestAction", reader, msg, "apikey")
    parts = data(events)[0]["body"]["body"]["parts"]
    assert [(p["name"], p["filename"], p["text"]) for p in parts] == [
        ("note", None, "see attached"),
        ("invoice.pdf", "invoice.pdf", "invoice bytes"),
    ]


# --- 5. verifyCredentials with the credential form the platform's UI stores ----------------

OAUTH2_FORM = {"type": "OAuth2", "oauth2": {"clientId": "clientId", "clientSecret": "clientSecret",
               "authUri": "https://example.com/oauth/v2/auth",
               "tokenUri": "https://example.com/oauth/v2/token",
               "scopes": ["Example.fullaccess.all"], "additionalProperties": {}, "keys": {}}}  # fmt: skip


def oauth2_form(keys: Any) -> dict[str, Any]:
    form = json.loads(json.dumps(OAUTH2_FORM))
    form["oauth2"]["keys"] = keys
    if keys is None:
        del form["oauth2"]["keys"]
    return {"auth": form}


@pytest.mark.parametrize(
    ("keys", "verified"),
    [
        ({"access_token": "access_token", "refresh_token": "refresh_token"}, True),
        ({"access_token": "access_token"}, True),  # no refresh token is fine
        (None, False),
        ({"error": "invalid_client_secret"}, False),
    ],
)
def test_verify_takes_the_platforms_oauth2_form(keys, verified):
    verdict, saved = run_verify(oauth2_form(keys), component=ROOT)
    assert verdict["verified"] is verified
    assert saved == []
    if not verified:
        assert "OAuth2 provider returned no" in verdict["reason"]


@pytest.mark.parametrize(
    ("basic", "verified"),
    [({"username": "u", "password": "p"}, True), ({"password": "p"}, False),
     ({"username": "u"}, False)],
)  # fmt: skip
def test_verify_takes_the_platforms_basic_form(basic, verified):
    verdict, _ = run_verify({"auth": {"type": "Basic Auth", "basic": basic}}, component=ROOT)
    assert verdict["verified"] is verified


def test_verify_refuses_a_platform_held_oauth2_secret_without_an_access_token(platform):
    verdict, _ = run_verify({"secretId": "no-access"}, component=ROOT)
    assert verdict["verified"] is False
    assert "no access token" in verdict["reason"]
    assert run_verify({"secretId": "demo"}, component=ROOT)[0] == {"verified": True}


# --- 6. the smaller differences a migrated flow can see ------------------------------------


def test_json_goes_out_compact_as_json_stringify_writes_it(recorder):
    raw_reader = {"method": "POST", "url": quoted(f"{recorder.url}/raw"),
                  "body": {"contentType": "application/json", "raw": '{"k": 1, "l": [1, 2]}'}}  # fmt: skip
    form_reader = {"method": "POST", "url": quoted(f"{recorder.url}/form"),
                   "body": {"contentType": "application/x-www-form-urlencoded",
                            "urlencoded": [{"key": "obj", "value": '{"a": {"b": 1}}'}]}}  # fmt: skip
    assert kinds(run("httpRequestAxios", raw_reader)) == ["data", "end"]
    assert kinds(run("httpRequestAxios", form_reader)) == ["data", "end"]
    (_, _, raw, _), (_, _, form, _) = recorder.requests
    assert raw == b'{"k":1,"l":[1,2]}'
    assert form == b"obj=%7B%22a%22%3A%7B%22b%22%3A1%7D%7D"


def test_a_body_holding_elasticio_is_refused_when_there_is_a_passthrough(recorder):
    reader = {"method": "POST", "url": quoted(f"{recorder.url}/x"),
              "body": {"contentType": "application/json", "raw": "elasticio"}}  # fmt: skip
    msg = {"body": {"elasticio": "mine"}, "passthrough": {"step_1": {"body": {"a": 1}}}}
    events = run("httpRequestAxios", reader, msg)
    assert kinds(events) == ["error", "end"]
    assert "'elasticio' key" in events[0].payload["message"]
    assert recorder.requests == []
    plain = run("httpRequestAxios", reader, {"body": {"elasticio": "mine"}})
    assert kinds(plain) == ["data", "end"]  # without a passthrough, the key is the body's own


def test_a_secret_without_a_type_sends_the_request_without_auth(platform, recorder):
    served = platform.state.secrets

    def secrets(name: str, refresh: bool) -> dict[str, Any] | None:
        if name == "typeless":  # as a secrets API may answer one: no type, no credentials
            return {"name": name, "state": "ready"}
        return served(name, refresh)

    platform.state.secrets = secrets
    reader = {"method": "GET", "url": quoted(f"{recorder.url}/t")}
    events = run("httpRequestAxios", reader, secret="typeless")
    assert kinds(events) == ["data", "end"]
    assert recorder.requests[0][3] is None  # no Authorization header
