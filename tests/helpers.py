"""Helpers shared by the tests: running the CLI as a user does, and fixture paths."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLE = FIXTURES / "sample"


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m runtime ...` the way a user does, and capture what it prints."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if "LOG_FORMAT" not in (env or {}):
        full_env.pop("LOG_FORMAT", None)
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def demo_oauth(api, **extra):
    """An OAuth2 credential as a step's cfg holds it, freshly signed in to the demo API."""
    tokens = api.consented_tokens()
    return {
        "type": "oauth2",
        "clientId": "demo-client",
        "clientSecret": "demo-secret",
        "tokenUrl": f"{api.url}/oauth/token",
        "baseUrl": f"{api.url}/api",
        "oauth": {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
        **extra,
    }


def demo_credential(api, tokens=None, **extra):
    """An OAuth2 credential as a credentials-file entry holds it, signed in to the demo API."""
    return api.credential(tokens, **extra)


def wait_for(condition, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout:g} s")


class Ended:
    """How a call that ``finishes`` ended: its value, or the exception it raised."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def finishes(call: Callable[[], Any], within: float) -> Ended:
    """Run ``call`` on a thread and wait for it to end; fail the test if it is still
    running after ``within`` seconds (a generous bound on a condition, not a timing)."""
    ended = Ended()

    def run() -> None:
        try:
            ended.value = call()
        except BaseException as exc:
            ended.error = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still running after {within:g} s"
    return ended
