"""Flows saved with the platform's own REST API component run unchanged on ours.

Each test runs the platform's step id with a configuration written as that component's
documentation and tests write it (its ``reader`` object, ``secretId``), against real HTTP
servers on 127.0.0.1, with the credential served by the local platform's secrets API.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from lib.platform_steps import older_options
from runtime.auth.errors import CredentialError
from runtime.testing import run_step, run_verify
from tests.component.rest_servers import PNG
from tests.helpers import ROOT

FLOWSTEPS = ROOT / "tests" / "fixtures" / "flowsteps"


@pytest.fixture
def refusing_port(platform):
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def run(step, reader, msg=None, secret="open", **options):
    cfg = {"reader": reader, "secretId": secret, **options}
    return run_step(step, msg=msg or {"body": {}}, cfg=cfg, component=ROOT)


def kinds(events):
    return [e.kind for e in events]


def data(events):
    found = [e.payload for e in events if e.kind == "data"]
    assert found, [e.payload for e in events]
    return found


def quoted(text):
    """A JSONata string literal, as the request view writes a constant."""
    return json.dumps(text)


# --- the current steps: httpRequestAxios, httpRequestAxiosTrigger ---------------------------


def test_current_step_signs_with_the_platforms_secret_and_emits_its_output_shape(platform):
    reader = {"method": "GET", "url": quoted(f"{platform.api.url}/api/me")}
    events = run("httpRequestAxios", reader, secret="demo")
    assert kinds(events) == ["data", "end"]
    body = data(events)[0]["body"]
    assert set(body) == {"statusCode", "HTTPHeaders", "responseBody"}
    assert body["statusCode"] == 200
    assert body["responseBody"]["id"] == "user-1"
    assert body["HTTPHeaders"]["content-type"].startswith("application/json")


def test_a_401_has_the_platform_refresh_the_secret_once_for_all_threads(platform):
    platform.api.book.expire_all()
    reader = {"method": "GET", "url": quoted(f"{platform.api.url}/api/me")}
    results: list[list] = []

    def one() -> None:
        results.append(run("httpRequestAxios", reader, secret="demo"))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [kinds(events) for events in results] == [["data", "end"]] * 4  # no updateKeys
    assert platform.secrets.refreshes["demo"] == 1
    assert platform.api.stats()["invalid_grants"] == 0


@pytest.mark.parametrize("secret", ["basic", "apikey"])
def test_basic_and_api_key_secrets_sign_the_request(platform, secret):
    reader = {"method": "GET", "url": quoted(f"{platform.api.url}/api/echo")}
    events = run("httpRequestAxios", reader, secret=secret)
    assert data(events)[0]["body"]["statusCode"] == 200  # the demo API refuses unsigned calls


def test_a_secret_the_platform_does_not_have_is_a_clear_error(platform):
    events = run(
        "httpRequestAxios", {"method": "GET", "url": '"http://127.0.0.1:9/x"'}, secret="gone"
    )
    assert kinds(events) == ["error", "end"]
    message = events[0].payload["message"]
    assert "no secret gone" in message and "choose the credential again" in message


def test_a_reader_without_method_is_refused_and_nothing_is_sent(server):
    events = run("httpRequestAxios", {"url": quoted(f"{server.url}/status/200")})
    assert kinds(events) == ["error", "end"]
    assert "'reader.method' is empty" in events[0].payload["message"]
    assert server.seen == []


def test_a_get_sends_its_urlencoded_rows_as_the_query(platform):
    reader = {
        "method": "GET",
        "url": quoted(f"{platform.api.url}/api/echo"),
        "body": {"contentType": "application/x-www-form-urlencoded",
                 "urlencoded": [{"key": "name", "value": "name"}, {"key": "n", "value": "2"}]},
    }  # fmt: skip
    echoed = data(run("httpRequestAxios", reader, {"body": {"name": "Ada"}}, "apikey"))
    assert echoed[0]["body"]["responseBody"]["query"] == {"name": "Ada", "n": "2"}


def test_a_get_sends_its_raw_body(platform):
    reader = {
        "method": "GET",
        "url": quoted(f"{platform.api.url}/api/echo"),
        "body": {"contentType": "application/json", "raw": '{"find": name}'},
    }
    echoed = data(run("httpRequestAxios", reader, {"body": {"name": "Ada"}}, "apikey"))
    assert echoed[0]["body"]["responseBody"]["body"] == {"find": "Ada"}


def test_a_raw_text_body_goes_out_as_the_text(platform):
    reader = {
        "method": "POST",
        "url": quoted(f"{platform.api.url}/api/echo"),
        "body": {"contentType": "text/plain", "raw": '"Dear " & name'},
    }
    echoed = data(run("httpRequestAxios", reader, {"body": {"name": "Ada"}}, "apikey"))
    answer = echoed[0]["body"]["responseBody"]
    assert answer["body"] == "Dear Ada"
    assert answer["headers"]["Content-Type"] == "text/plain"


def test_a_post_without_a_body_sends_none(platform):
    reader = {"method": "POST", "url": quoted(f"{platform.api.url}/api/echo")}
    echoed = data(run("httpRequestAxios", reader, {"body": {"name": "Ada"}}, "apikey"))
    answer = echoed[0]["body"]["responseBody"]
    assert answer["body"] is None, answer
    assert answer["headers"].get("Content-Length", "0") == "0", answer


def test_moment_in_the_url(platform):
    reader = {
        "method": "GET",
        "url": quoted(f"{platform.api.url}/api/echo?day=")
        + ' & $moment(day, "DD.MM.YYYY").add(1, "days").format("YYYY-MM-DD")',
    }
    echoed = data(run("httpRequestAxios", reader, {"body": {"day": "31.12.2026"}}, "apikey"))
    assert echoed[0]["body"]["responseBody"]["query"] == {"day": "2027-01-01"}


def test_current_step_keeps_xml_and_text_as_text(server):
    events = run("httpRequestAxios", {"method": "GET", "url": quoted(f"{server.url}/xml")})
    body = data(events)[0]["body"]["responseBody"]
    assert isinstance(body, str) and body.startswith("<?xml")


def test_current_step_does_not_follow_when_told_not_to_and_fails_on_the_3xx(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/redirect/1")}
    events = run("httpRequestAxios", reader, maxRedirects="0")
    assert kinds(events) == ["error", "end"]
    assert "302" in events[0].payload["message"]
    events = run("httpRequestAxios", reader, maxRedirects="0", ignoreErrorCodes="302")
    answer = data(events)[0]["body"]
    assert answer["statusCode"] == 302
    assert answer["HTTPHeaders"]["location"] == "/redirect/0"


def test_current_step_stores_binary_answers_as_attachments(server, store):
    events = run("httpRequestAxios", {"method": "GET", "url": quoted(f"{server.url}/png")})
    message = data(events)[0]
    url = message["body"]["attachmentUrl"]
    assert "responseBody" not in message["body"]
    assert list(store.objects.values()) == [PNG]
    assert [entry["url"] for entry in message["attachments"].values()] == [url]


def test_current_trigger_is_the_same_call_on_an_empty_message(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/list")}
    events = run("httpRequestAxiosTrigger", reader)
    assert data(events)[0]["body"]["responseBody"] == [{"n": 1}, {"n": 2}, {"n": 3}]


# --- the older steps: httpRequestAction, httpRequestTrigger with a reader -----------------


def test_older_step_emits_its_output_shape_and_carries_attachments(server):
    incoming = {"body": {}, "attachments": {"a.txt": {"url": "http://x/a", "size": 1}}}
    events = run(
        "httpRequestAction", {"method": "GET", "url": quoted(f"{server.url}/list")}, incoming
    )
    message = data(events)[0]
    assert set(message["body"]) == {"headers", "body", "statusCode", "statusMessage"}
    assert message["body"]["statusMessage"] == "OK"
    assert message["attachments"] == incoming["attachments"]


def test_split_result_emits_one_message_per_item(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/list")}
    events = run("httpRequestAction", reader, splitResult=True)
    assert kinds(events) == ["data", "data", "data", "end"]
    assert [m["body"]["body"] for m in data(events)] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert {m["body"]["statusCode"] for m in data(events)} == {200}
    events = run("httpRequestAction", reader)
    assert kinds(events) == ["data", "end"]


def test_dont_throw_error_flag_emits_a_404_as_data(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/status/404")}
    events = run("httpRequestAction", reader, dontThrowErrorFlg=True)
    answer = data(events)[0]["body"]
    assert answer["statusCode"] == 404
    assert answer["body"] == {"problem": "as asked"}
    events = run("httpRequestAction", reader)
    assert kinds(events) == ["error", "end"]
    assert "404" in events[0].payload["message"]


def test_dont_throw_error_flag_emits_a_refused_connection_as_data(refusing_port):
    reader = {"method": "GET", "url": quoted(f"http://127.0.0.1:{refusing_port}/x")}
    events = run("httpRequestAction", reader, dontThrowErrorFlg=True, connectionRetries="0")
    answer = data(events)[0]["body"]
    assert answer["errorCode"] == "ECONNREFUSED"
    assert "connection refused" in answer["errorMessage"]


def test_enable_rebound_sends_the_message_back_at_once(server, refusing_port):
    reader = {"method": "GET", "url": quoted(f"{server.url}/status/503")}
    events = run("httpRequestAction", reader, enableRebound=True)
    assert kinds(events) == ["rebound", "end"]
    assert sum(1 for path, _ in server.seen if path == "/status/503") == 1
    reader = {"method": "GET", "url": quoted(f"http://127.0.0.1:{refusing_port}/x")}
    assert kinds(run("httpRequestAction", reader, enableRebound=True)) == ["rebound", "end"]
    reader = {"method": "GET", "url": quoted(f"{server.url}/status/404")}  # not a rebound code
    assert kinds(run("httpRequestAction", reader, enableRebound=True)) == ["error", "end"]


def test_do_not_follow_redirects_emits_the_3xx(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/redirect/1")}
    answer = data(run("httpRequestAction", reader, followRedirect="doNotFollowRedirects"))[0]
    assert answer["body"]["statusCode"] == 302
    assert answer["body"]["headers"]["location"] == "/redirect/0"
    followed = data(run("httpRequestAction", reader))[0]
    assert followed["body"]["body"] == {"arrived": True}


@pytest.mark.parametrize("path", ["/bad-xml", "/bad-json"])
def test_older_step_fails_on_an_answer_that_does_not_parse_as_its_type(server, path):
    events = run("httpRequestAction", {"method": "GET", "url": quoted(f"{server.url}{path}")})
    assert kinds(events) == ["error", "end"]
    assert "but is not" in events[0].payload["message"]


@pytest.mark.parametrize(("path", "content"), [("/files/r.pdf", None), ("/csv", b"a,b\n1,2\n")])
def test_older_step_stores_binary_and_csv_answers_as_attachments(server, store, path, content):
    events = run("httpRequestAction", {"method": "GET", "url": quoted(f"{server.url}{path}")})
    message = data(events)[0]
    entry = message["body"]["attachments"]
    assert "body" not in message["body"]
    assert list(message["attachments"].values()) == [entry]
    stored = list(store.objects.values())
    assert len(stored) == 1 and entry["size"] == str(len(stored[0]))  # text, as there
    if content is not None:
        assert stored[0] == content


def test_older_step_sends_no_body_with_a_get(platform):
    reader = {
        "method": "GET",
        "url": quoted(f"{platform.api.url}/api/echo"),
        "body": {"contentType": "application/json", "raw": '{"find": name}'},
    }
    echoed = data(run("httpRequestAction", reader, {"body": {"name": "Ada"}}, "apikey"))
    assert echoed[0]["body"]["body"]["body"] is None


def test_older_trigger_reads_the_older_options(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/list")}
    events = run("httpRequestTrigger", reader, splitResult=True)
    assert kinds(events) == ["data", "data", "data", "end"]


def test_delay_is_in_seconds_spread_over_call_count():
    assert older_options({"delay": "6", "callCount": "3"}, oauth2=False).delay == 2.0
    assert older_options({"delay": "1"}, oauth2=False).delay == 1.0


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"callCount": "2"}, "'callCount' needs 'delay'"),
        ({"delay": "-1"}, "whole number above 0"),
        ({"delay": "2000"}, "at most 1140 s"),
    ],
)
def test_bad_delay_settings_are_clear_errors(server, options, said):
    events = run(
        "httpRequestAction", {"method": "GET", "url": quoted(f"{server.url}/list")}, **options
    )
    assert kinds(events) == ["error", "end"]
    assert said in events[0].payload["message"]
    assert server.seen == []


def test_binary_answers_stored_as_attachments_keep_a_size_limit(server, store):
    reader = {"method": "GET", "url": quoted(f"{server.url}/files/big.pdf?bytes=5000")}
    events = run("httpRequestAxios", reader, maxContentLength="1000")
    assert kinds(events) == ["error", "end"]
    assert "more than the 1,000 bytes" in events[0].payload["message"]
    assert store.objects == {}


def test_a_sync_step_uses_and_refreshes_a_platform_held_credential_too(platform):
    platform.api.book.expire_all()
    cfg = {"secretId": "demo", "url": f"{platform.api.url}/api/me"}
    events = run_step("syncApi", msg={"body": {}}, cfg=cfg, component=FLOWSTEPS)
    assert kinds(events) == ["data", "end"]  # no updateKeys: the keys are the platform's
    assert data(events)[0]["body"]["id"] == "user-1"
    assert platform.secrets.refreshes["demo"] == 1


def test_verify_reads_a_platform_held_credential(platform):
    verdict, saved = run_verify({"secretId": "basic"}, component=ROOT)
    assert (verdict, saved) == ({"verified": True}, [])
    checked = {"secretId": "basic", "verifyPath": f"{platform.api.url}/api/me"}
    assert run_verify(checked, component=ROOT)[0] == {"verified": True}
    with pytest.raises(CredentialError, match="no secret gone in workspace ws-1"):
        run_verify({"secretId": "gone"}, component=ROOT)


def test_the_platform_refusing_to_refresh_is_a_reconnect_error_without_secrets(platform):
    platform.api.book.expire_all()
    platform.api.book.revoke_all()
    reader = {"method": "GET", "url": quoted(f"{platform.api.url}/api/me")}
    events = run("httpRequestAxios", reader, secret="demo")
    assert kinds(events) == ["error", "end"]
    message = events[0].payload["message"]
    assert "could not refresh the token of secret demo" in message
    assert "reconnect" in message
    entry = json.loads(platform.secrets_file.read_text())["demo"]
    for secret in (entry["accessToken"], entry["refreshToken"], entry["clientSecret"]):
        assert secret not in json.dumps([e.payload for e in events])


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("latin1", "caf\u00e9"),
        ("utf16le", "\u6163\ue966"),
        ("base64url", "Y2Fm6Q"),
        ("ascii", "cafi"),
    ],
)
def test_current_step_decodes_the_body_with_a_node_encoding(server, encoding, expected):
    reader = {"method": "GET", "url": quoted(f"{server.url}/text")}
    events = run("httpRequestAxios", reader, responseEncoding=encoding)
    assert data(events)[0]["body"]["responseBody"] == expected


def test_an_unknown_response_encoding_is_refused_naming_the_field(server):
    reader = {"method": "GET", "url": quoted(f"{server.url}/text")}
    events = run("httpRequestAxios", reader, responseEncoding="ebcdic")
    assert kinds(events) == ["error", "end"]
    assert "responseEncoding" in events[0].payload["message"]
    assert server.seen == []
