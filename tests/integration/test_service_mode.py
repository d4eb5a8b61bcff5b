"""``python -m runtime service ...`` as the platform calls it: result POSTed, keys saved."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from runtime.auth.cache import CACHE
from tests.helpers import FIXTURES, ROOT, SAMPLE, demo_oauth, run_cli


class ResultReceiver:
    """The platform's end of ELASTICIO_POST_RESULT_URL."""

    def __init__(self, status: int = 200) -> None:
        self.posted: list[dict] = []
        self.auth: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                outer.posted.append(json.loads(self.rfile.read(length)))
                outer.auth.append(self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, with_auth: bool = True) -> str:
        port = self.server.server_address[1]
        credentials = "svc-user:p%40ss@" if with_auth else ""
        return f"http://{credentials}127.0.0.1:{port}/result"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = ResultReceiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh():
    CACHE.clear()


def service(method: str, receiver, platform_api, cfg, component=ROOT, **env):
    base = {
        "ELASTICIO_POST_RESULT_URL": receiver.url(),
        "ELASTICIO_CFG": cfg if isinstance(cfg, str) else json.dumps(cfg),
        "ELASTICIO_API_URI": platform_api.url,
        "ELASTICIO_API_USERNAME": platform_api.state.username,
        "ELASTICIO_API_KEY": platform_api.state.password,
    }
    base.update(env)
    return run_cli("service", method, cwd=component, env={k: v for k, v in base.items() if v})


def oauth(api, **extra):
    return demo_oauth(api, verifyPath="/me", **extra)


def test_verify_success_is_posted_with_basic_auth_from_the_url(receiver, platform_api, demo_api):
    result = service("verifyCredentials", receiver, platform_api, oauth(demo_api))
    assert result.returncode == 0, result.stderr
    assert receiver.posted == [{"status": "success", "data": {"verified": True}}]
    assert receiver.auth[0] == "Basic " + base64.b64encode(b"svc-user:p@ss").decode()


def test_a_rejected_credential_is_not_verified(receiver, platform_api, demo_api):
    cfg = {
        "type": "bearer",
        "token": "wrong-token",
        "baseUrl": f"{demo_api.url}/api",
        "verifyPath": "/me",
    }
    result = service("verifyCredentials", receiver, platform_api, cfg)
    assert result.returncode == 0
    [posted] = receiver.posted
    assert posted["status"] == "success"
    assert posted["data"]["verified"] is False
    assert "401" in posted["data"]["reason"]


def test_verify_returning_false_means_not_verified(receiver, platform_api):
    result = service(
        "verifyCredentials", receiver, platform_api, {"apiKey": "bad"}, component=SAMPLE
    )
    assert result.returncode == 0
    assert receiver.posted == [{"status": "success", "data": {"verified": False}}]


def test_a_failing_check_is_an_error_not_a_verdict(receiver, platform_api, demo_api):
    cfg = {
        "type": "api_key",
        "key": "demo-api-key",
        "baseUrl": f"{demo_api.url}/api",
        "verifyPath": "/status/503",
    }
    result = service("verifyCredentials", receiver, platform_api, cfg)
    assert result.returncode == 1
    [posted] = receiver.posted
    assert posted["status"] == "error"
    assert "could not check the credential" in posted["data"]["message"]


def test_a_verify_file_that_fails_to_load_is_an_error(receiver, platform_api, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES / "flowsteps", broken)
    (broken / "verifyCredentials.py").write_text("import not_installed_module\n")
    result = service("verifyCredentials", receiver, platform_api, {"apiKey": "x"}, component=broken)
    assert result.returncode == 1
    [posted] = receiver.posted
    assert posted["status"] == "error"
    assert "ModuleNotFoundError" in posted["data"]["message"]


def test_get_meta_model(receiver, platform_api):
    result = service(
        "getMetaModel",
        receiver,
        platform_api,
        {},
        component=SAMPLE,
        ELASTICIO_ACTION_OR_TRIGGER="selectable",
    )
    assert result.returncode == 0
    assert receiver.posted == [
        {"status": "success", "data": {"in": {"type": "object"}, "out": {"type": "object"}}}
    ]


def test_select_model_saves_refreshed_keys_through_the_accounts_api(
    receiver, platform_api, demo_api
):
    cfg = {**oauth(demo_api), "_account": "acct-77"}
    demo_api.book.expire_all()
    result = service(
        "selectModel",
        receiver,
        platform_api,
        cfg,
        ELASTICIO_ACTION_OR_TRIGGER="httpRequest",
        ELASTICIO_GET_MODEL_METHOD="tenants",
    )
    assert result.returncode == 0, result.stderr
    assert receiver.posted == [
        {
            "status": "success",
            "data": {"tenant-1": "Demo Company (UK)", "tenant-2": "Demo Company (US)"},
        }
    ]
    saved = platform_api.state.accounts["acct-77"]
    assert saved["oauth"]["refresh_token"] != cfg["oauth"]["refresh_token"]
    assert saved["oauth"]["refresh_token"] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("method", "env", "message"),
    [
        ("verifyCredentials", {"ELASTICIO_CFG": ""}, "ELASTICIO_CFG is not provided"),
        ("verifyCredentials", {"ELASTICIO_CFG": "{nope"}, "Unable to parse ELASTICIO_CFG"),
        ("verifyCredentials", {"ELASTICIO_API_URI": ""}, "ELASTICIO_API_URI is not provided"),
        ("getMetaModel", {}, "ELASTICIO_ACTION_OR_TRIGGER is not provided"),
        (
            "selectModel",
            {"ELASTICIO_ACTION_OR_TRIGGER": "httpRequest"},
            "ELASTICIO_GET_MODEL_METHOD is not provided",
        ),
        (
            "selectModel",
            {
                "ELASTICIO_ACTION_OR_TRIGGER": "httpRequest",
                "ELASTICIO_GET_MODEL_METHOD": "nothingLikeThis",
            },
            "has no function nothingLikeThis(ctx, cfg)",
        ),
    ],
)
def test_every_missing_or_bad_input_is_a_clear_error(receiver, platform_api, method, env, message):
    result = service(method, receiver, platform_api, {"type": "none"}, **env)
    assert result.returncode == 1
    [posted] = receiver.posted
    assert posted["status"] == "error"
    assert message in posted["data"]["message"]


def test_without_a_result_url_nothing_runs(receiver, platform_api):
    result = service("verifyCredentials", receiver, platform_api, {}, ELASTICIO_POST_RESULT_URL="")
    assert result.returncode == 2
    assert "ELASTICIO_POST_RESULT_URL is not set" in result.stderr + result.stdout
    assert receiver.posted == []


def test_a_refused_post_fails_the_call(platform_api):
    refusing = ResultReceiver(status=404)
    try:
        result = service(
            "verifyCredentials", refusing, platform_api, {"apiKey": "good-key"}, component=SAMPLE
        )
    finally:
        refusing.close()
    assert result.returncode == 1
    assert "Failed to POST data to" in result.stdout + result.stderr
    assert "p@ss" not in result.stdout + result.stderr


def test_an_api_that_cannot_be_reached_is_one_line_naming_host_and_cause(receiver, platform_api):
    cfg = {"type": "bearer", "token": "tok-unreachable", "baseUrl": "http://127.0.0.1:9"}
    result = service("verifyCredentials", receiver, platform_api, cfg)
    assert result.returncode != 0
    message = receiver.posted[0]["data"]["message"]
    assert message == "could not connect to 127.0.0.1:9 (connection refused)"
    assert "could not connect to 127.0.0.1:9 (connection refused)" in result.stderr
    assert "tok-unreachable" not in result.stderr + json.dumps(receiver.posted)
