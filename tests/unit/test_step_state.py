"""What a worker keeps between messages: each message's step gets its own cfg and snapshot."""

from __future__ import annotations

from runtime.worker.step_state import StepState


def test_a_step_changing_its_cfg_or_snapshot_changes_nothing_for_the_next_message():
    config = {"apiUrl": "https://api.example", "oauth": {"scopes": ["read"], "n": 1.5},
              "flag": True, "none": None, "tags": {"a", "b"}}  # fmt: skip
    state = StepState({"config": config, "snapshot": {"seen": [1, {"x": 2}]}})
    first, snapshot = state.cfg(), state.snapshot()
    assert first == config
    first["oauth"]["scopes"].append("write")
    first["oauth"]["n"] = 0
    first["tags"].add("c")
    first["new"] = 1
    snapshot["seen"][1]["x"] = 3
    assert state.cfg() == config
    assert state.cfg()["tags"] == {"a", "b"}
    assert state.snapshot() == {"seen": [1, {"x": 2}]}


def test_saved_keys_lie_over_the_configuration_for_every_later_message():
    state = StepState({"config": {"oauth": {"refresh_token": "old"}, "apiUrl": "u"}})
    keys = {"oauth": {"refresh_token": "new", "access_token": "at"}}
    state.remember_keys(keys)
    keys["oauth"]["refresh_token"] = "changed by the caller afterwards"
    assert state.cfg() == {"oauth": {"refresh_token": "new", "access_token": "at"}, "apiUrl": "u"}
