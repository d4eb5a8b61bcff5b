from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runtime.errors import ComponentError
from runtime.step.component import load_component
from runtime.step.loader import load_step


def write_component(root: Path, descriptor: object, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = descriptor if isinstance(descriptor, str) else json.dumps(descriptor)
    (root / "component.json").write_text(text)
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


PROCESS = "def process(ctx, msg, cfg, snapshot):\n    return msg.body\n"


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ComponentError) as caught:
        load_component(root)
    return caught.value.problems


def test_full_descriptor_is_modelled(sample_component):
    component = load_component(sample_component)
    spec = component.spec
    assert spec.title.startswith("Sample")
    assert spec.env_vars["SAMPLE_CLIENT_ID"].required is False
    assert spec.credentials is not None
    assert spec.credentials.fields["apiKey"].view_class == "PasswordFieldView"
    count = spec.triggers["countTo"]
    assert count.type == "polling"
    assert count.auto_resolve_object_references is True
    assert component.schema(count, "out") == {
        "type": "object",
        "properties": {"i": {"type": "integer"}},
        "required": ["i"],
    }
    select = spec.actions["selectable"]
    assert select.dynamic_metadata is True
    assert select.fields["colour"].model == "colours"


def test_oauth2_block_and_unknown_ui_extras_are_kept(tmp_path):
    root = write_component(
        tmp_path,
        {
            "title": "T",
            "docsUrl": "https://example.com/docs",
            "credentials": {
                "fields": {"oauth": {"label": "Sign in", "viewClass": "OAuthFieldView"}},
                "oauth2": {
                    "client_id": "{{CLIENT_ID}}",
                    "client_secret": "{{CLIENT_SECRET}}",
                    "auth_uri": "https://login.example.com/authorize",
                    "token_uri": "https://login.example.com/token",
                    "scopes": ["offline_access"],
                    "access_type": "offline",
                },
            },
            "actions": {
                "a": {
                    "main": "./a.py",
                    "help": {"description": "d", "link": "https://x"},
                    "autoResolveObjectReferences": False,
                    "fields": {"f": {"label": "F", "viewClass": "TextFieldView", "note": "n"}},
                }
            },
        },
        {"a.py": PROCESS},
    )
    spec = load_component(root).spec
    assert spec.docs_url == "https://example.com/docs"
    assert spec.credentials and spec.credentials.oauth2
    assert spec.credentials.oauth2.token_uri == "https://login.example.com/token"
    assert spec.credentials.oauth2.model_extra == {"access_type": "offline"}
    assert spec.actions["a"].auto_resolve_object_references is False
    assert spec.actions["a"].help and spec.actions["a"].help.link == "https://x"


def test_bad_json_names_the_file_and_the_position(tmp_path):
    root = write_component(tmp_path, '{"title": "T",\n "actions": {,}}')
    [problem] = problems_of(root)
    assert str(root / "component.json") in problem
    assert "not valid JSON at line 2" in problem


def test_missing_component_json_says_where_it_looked(tmp_path):
    [problem] = problems_of(tmp_path)
    assert "component.json: not found" in problem
    assert "ELASTICIO_COMPONENT_PATH" in problem


def test_missing_main_names_the_json_path(tmp_path):
    root = write_component(tmp_path, {"title": "T", "actions": {"doIt": {"title": "x"}}})
    [problem] = problems_of(root)
    assert problem.endswith("$.actions.doIt.main: is required")
    assert str(root / "component.json") in problem


def test_main_file_that_does_not_exist(tmp_path):
    root = write_component(tmp_path, {"title": "T", "triggers": {"poll": {"main": "./nope.py"}}})
    [problem] = problems_of(root)
    assert "$.triggers.poll.main: file './nope.py' does not exist" in problem


def test_every_problem_is_reported_at_once(tmp_path):
    root = write_component(
        tmp_path,
        {
            "title": "T",
            "actions": {
                "a": {"main": "./missing_a.py"},
                "b": {"main": "./b.py", "metadata": {"in": "./schemas/missing.json"}},
            },
        },
        {"b.py": PROCESS},
    )
    problems = problems_of(root)
    assert len(problems) == 2
    assert any("$.actions.a.main" in p for p in problems)
    assert any(
        "$.actions.b.metadata.in: file './schemas/missing.json' does not exist" in p
        for p in problems
    )


def test_metadata_file_that_is_not_json(tmp_path):
    root = write_component(
        tmp_path,
        {"title": "T", "actions": {"a": {"main": "./a.py", "metadata": {"out": "./out.json"}}}},
        {"a.py": PROCESS, "out.json": "{not json"},
    )
    [problem] = problems_of(root)
    assert "$.actions.a.metadata.out: file './out.json' is not valid JSON" in problem


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "banana"}, "unknown type 'banana'"),
        ({"type": "object", "properties": []}, "'properties' must be an object"),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "unknown type 'strin'"),
        ({"type": "object", "required": "a"}, "'required' must be a list"),
        ({"title": "just a title"}, "none of type, properties"),
        (["not", "an", "object"], "must hold a JSON object"),
    ],
)
def test_metadata_file_that_is_not_json_schema(tmp_path, schema, reason):
    root = write_component(
        tmp_path,
        {"title": "T", "actions": {"a": {"main": "./a.py", "metadata": {"in": "./in.json"}}}},
        {"a.py": PROCESS, "in.json": json.dumps(schema)},
    )
    [problem] = problems_of(root)
    assert "$.actions.a.metadata.in" in problem
    assert "is not a JSON Schema" in problem
    assert reason in problem


def test_inline_metadata_is_checked_too(tmp_path):
    root = write_component(
        tmp_path,
        {"title": "T", "actions": {"a": {"main": "./a.py", "metadata": {"in": {"type": 5}}}}},
        {"a.py": PROCESS},
    )
    [problem] = problems_of(root)
    assert "$.actions.a.metadata.in: is not a JSON Schema" in problem


def test_wrong_types_are_located(tmp_path):
    root = write_component(
        tmp_path,
        {
            "title": "T",
            "triggers": {"t": {"main": "./a.py", "type": "cron"}},
            "actions": {"a": {"main": "./a.py", "fields": {"f": {"label": "F"}}}},
        },
        {"a.py": PROCESS},
    )
    problems = problems_of(root)
    assert any("$.triggers.t.type:" in p and "polling" in p for p in problems)
    assert any(p.endswith("$.actions.a.fields.f.viewClass: is required") for p in problems)


def test_component_without_steps_or_title(tmp_path):
    root = write_component(tmp_path, {"description": "nothing"})
    [problem] = problems_of(root)
    assert problem.endswith("$.title: is required")
    root2 = write_component(tmp_path / "two", {"title": "T"})
    [problem2] = problems_of(root2)
    assert "needs at least one trigger or action" in problem2


def test_top_level_must_be_an_object(tmp_path):
    root = write_component(tmp_path, "[1, 2]")
    [problem] = problems_of(root)
    assert "$: must be a JSON object, not array" in problem


def test_triggers_are_found_before_actions(tmp_path):
    root = write_component(
        tmp_path,
        {
            "title": "T",
            "triggers": {"same": {"main": "./t.py"}},
            "actions": {"same": {"main": "./a.py"}},
        },
        {
            "t.py": "def process(ctx, msg, cfg, snapshot):\n    return 'trigger'\n",
            "a.py": "def process(ctx, msg, cfg, snapshot):\n    return 'action'\n",
        },
    )
    step = load_step(load_component(root), "same")
    assert step.group == "triggers"
    assert step.process(None, None, None, None) == "trigger"


def test_unknown_step_lists_the_known_ones(sample_component):
    with pytest.raises(ComponentError) as caught:
        load_component(sample_component).find_step("nope")
    assert "no trigger or action named 'nope'" in str(caught.value)
    assert "countTo" in str(caught.value)


def test_loading_a_step_imports_its_module_as_a_package_module(sample_component, monkeypatch):
    # Other tests load components with a 'steps' package too: this one starts with none.
    for name in [n for n in sys.modules if n == "steps" or n.startswith("steps.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not Path(p, "steps").is_dir()])
    step = load_step(load_component(sample_component), "echo")
    assert step.module.__name__ == "steps.echo"
    assert Path(step.module.__file__) == (sample_component / "steps" / "echo.py").resolve()
    assert callable(step.process)


def test_a_file_of_the_same_name_in_another_components_folder_is_not_taken(tmp_path):
    roots = []
    for who in ("first", "second"):
        spec = {"title": who, "actions": {"a": {"main": "./solo.py"}}}
        source = f"WHO = {who!r}\ndef process(c, m, f, s):\n    return WHO\n"
        roots.append(write_component(tmp_path / who, spec, {"solo.py": source}))
    loaded = []
    for root in (roots[0], roots[1], roots[0]):  # both folders end up on sys.path
        sys.modules.pop("solo", None)  # as if another test had cleaned up after itself
        loaded.append(load_step(load_component(root), "a").process(None, None, None, None))
    assert loaded == ["first", "second", "first"]


def test_two_components_with_the_same_package_names_load_side_by_side(tmp_path):
    steps = {
        "steps/__init__.py": "",
        "steps/a.py": "WHO = {who!r}\n" + "def process(c, m, f, s):\n    return WHO\n",
    }
    roots = []
    for who in ("first", "second"):
        files = {name: text.format(who=who) for name, text in steps.items()}
        spec = {"title": who, "actions": {"a": {"main": "./steps/a.py"}}}
        roots.append(write_component(tmp_path / who, spec, files))
    loaded = [load_step(load_component(root), "a") for root in roots]
    assert [step.process(None, None, None, None) for step in loaded] == ["first", "second"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def process(:\n", "failed to load './a.py': SyntaxError"),
        ("import module_that_is_not_installed\n", "ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        ("x = 1\n", "has no function process(ctx, msg, cfg, snapshot)"),
        ("def process(msg, cfg):\n    pass\n", "must accept four arguments"),
    ],
)
def test_broken_step_modules_give_one_clear_error(tmp_path, source, reason):
    root = write_component(
        tmp_path, {"title": "T", "actions": {"a": {"main": "./a.py"}}}, {"a.py": source}
    )
    with pytest.raises(ComponentError) as caught:
        load_step(load_component(root), "a")
    message = str(caught.value)
    assert "$.actions.a.main" in message
    assert reason in message
