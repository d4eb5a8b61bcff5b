"""The REST connector's step fields: what the code reads is what component.json offers, and
code lists are read strictly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib import options as options_module
from lib.options import codes, options_from
from lib.request_plan import PLAN_FIELDS
from runtime import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = json.loads((ROOT / "component.json").read_text())
LEGACY = {"reboundOnRateLimit", "maxResponseBytes", "timeout"}
"""Read for older configurations, no longer offered."""


def fields_read_by_options() -> set[str]:
    source = Path(options_module.__file__).read_text()
    return set(re.findall(r'cfg(?:\.get\(|, )"(\w+)"', source))


def test_every_field_the_request_reads_is_offered_by_the_action_and_the_trigger():
    read = (set(PLAN_FIELDS) - {"reader"}) | (fields_read_by_options() - LEGACY)
    assert {"errorPolicy", "maxContentLength", "uploadFile", "noStrictSSL"} <= read
    action = set(COMPONENT["actions"]["httpRequest"]["fields"])
    trigger = set(COMPONENT["triggers"]["httpRequestTrigger"]["fields"])
    assert read - action == set()
    assert read - trigger == {"passNonSuccess"}
    for name in read:
        field = COMPONENT["actions"]["httpRequest"]["fields"][name]
        assert field.get("label"), name


def test_defaults_are_the_reference_components():
    chosen = options_from({})
    assert chosen.timeout == 100.0
    assert chosen.max_redirects == 5
    assert chosen.response_limit == 20 * 1024 * 1024
    assert chosen.max_retries == 10
    assert chosen.policy == "byComponent"
    assert chosen.policy_codes == frozenset({408, 423, 429, *range(500, 600)})
    assert options_from({"downloadAsAttachment": True}).response_limit == 100 * 1024 * 1024


def test_codes_and_ranges():
    assert codes({"c": "400-402, 418,503"}, "c", "", oauth2=False) == {400, 401, 402, 418, 503}
    with pytest.raises(InvalidInput, match="holds 401"):
        codes({"c": "400-404"}, "c", "", oauth2=True)


@given(st.text(max_size=40))
def test_any_code_list_is_codes_from_300_to_599_or_a_named_error(text):
    try:
        found = codes({"c": text}, "c", "", oauth2=False)
    except InvalidInput as exc:
        problem = str(exc)
        found = frozenset()
    else:
        problem = "field 'c'"
    assert "field 'c'" in problem
    assert all(300 <= code <= 599 for code in found)
