from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import SAMPLE, run_cli


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_exec_prints_each_event_as_a_json_line(tmp_path):
    msg = tmp_path / "msg.json"
    msg.write_text(json.dumps({"body": {"text": "hello"}}))
    result = run_cli("exec", "echo", "--msg", str(msg), "--component", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert events_of(result.stdout) == [
        {"event": "data", "payload": {"body": {"text": "hello"}, "headers": {"seen": True}}},
        {"event": "end", "payload": None},
    ]


def test_exec_finds_the_component_through_elasticio_component_path(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"n": 2}')
    result = run_cli(
        "exec",
        "countTo",
        "--cfg",
        str(cfg),
        env={"ELASTICIO_COMPONENT_PATH": "tests/fixtures/sample"},
    )
    assert result.returncode == 0, result.stderr
    assert [e["event"] for e in events_of(result.stdout)] == ["data", "data", "snapshot", "end"]


def test_exec_reads_the_message_from_stdin():
    result = run_cli("exec", "echo", "--msg", "-", "--component", str(SAMPLE), stdin='{"body": 7}')
    assert events_of(result.stdout)[0]["payload"]["body"] == 7


def test_exec_exits_1_when_the_step_emitted_an_error():
    result = run_cli("exec", "fail", "--component", str(SAMPLE))
    assert result.returncode == 1
    assert [e["event"] for e in events_of(result.stdout)] == ["data", "error", "end"]


def test_exec_timeout_stops_the_step():
    result = run_cli("exec", "sleepy", "--timeout", "0.5", "--component", str(SAMPLE))
    assert result.returncode == 1
    assert "was stopped" in events_of(result.stdout)[0]["payload"]["message"]


def test_logs_go_to_stderr_and_stdout_stays_json():
    result = run_cli("exec", "emitMany", "--component", str(SAMPLE), "--log-format", "json")
    assert result.returncode == 0
    events_of(result.stdout)  # every stdout line parses
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(entry["msg"] == "emitted" and entry["count"] == 6 for entry in logs)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("exec",), "the following arguments are required: step"),
        (("exec", "echo", "--timeout", "soon"), "invalid float value: 'soon'"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (
            ("exec", "echo", "--msg", "/nonexistent/msg.json"),
            "message file '/nonexistent/msg.json' does not exist",
        ),
        (("exec", "nope", "--component", str(SAMPLE)), "no trigger or action named 'nope'"),
        (("exec", "echo", "--component", "/nonexistent"), "component.json: not found"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(args, expected):
    result = run_cli(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_message_file_that_is_not_json(tmp_path):
    bad = tmp_path / "msg.json"
    bad.write_text("{nope")
    result = run_cli("exec", "echo", "--msg", str(bad), "--component", str(SAMPLE))
    assert result.returncode == 2
    assert "is not valid JSON (line 1, column 2)" in result.stderr
    assert "Traceback" not in result.stderr


def test_cfg_must_be_an_object(tmp_path):
    bad = tmp_path / "cfg.json"
    bad.write_text("[1]")
    result = run_cli("exec", "echo", "--cfg", str(bad), "--component", str(SAMPLE))
    assert result.returncode == 2
    assert "must hold a JSON object" in result.stderr


def test_every_command_has_help():
    for command in ((), ("exec",), ("validate",)):
        result = run_cli(*command, "--help")
        assert result.returncode == 0
        assert "usage:" in result.stdout


def test_validate_accepts_a_good_component():
    result = run_cli("validate", "--component", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert "is valid: 1 trigger(s), 11 action(s)" in result.stdout


def test_validate_lists_every_problem(tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(SAMPLE, root)
    (root / "steps" / "echo.py").write_text("def process(:\n")
    spec = json.loads((root / "component.json").read_text())
    spec["actions"]["selectable"]["fields"]["colour"]["model"] = "noSuchFunction"
    (root / "component.json").write_text(json.dumps(spec))
    (root / "verifyCredentials.py").write_text("x = 1\n")
    result = run_cli("validate", "--component", str(root))
    assert result.returncode == 2
    assert "$.actions.echo.main: failed to load './steps/echo.py': SyntaxError" in result.stderr
    assert "$.actions.selectable.fields.colour.model" in result.stderr
    assert "noSuchFunction" in result.stderr
    assert "verifyCredentials.py: has no function verify(ctx, credentials)" in result.stderr
    assert "Traceback" not in result.stderr
