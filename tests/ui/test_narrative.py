"""workbench/ui/narrative.py: same facts, three readers (told by investigation/render.py)."""
from __future__ import annotations

import dataclasses

import pytest

from workbench.ui.narrative import ROLES, narrate, next_step


def test_each_role_gets_the_same_facts_in_its_words(demo_inv):
    texts = {r: narrate(demo_inv, r, impact={"delta": -4300.0, "hours": 58},
                        numerator="conversions") for r in ROLES}
    for t in texts.values():
        assert "new_checkout_flow" in t
    assert "difference-in-differences" in texts["engineer"] and "Queries" in texts["engineer"]
    assert texts["operator"].startswith("### Roll back flag new_checkout_flow")
    assert "fewer conversions" in texts["product manager"]
    assert "difference-in-differences" not in texts["product manager"]
    with pytest.raises(ValueError):
        narrate(demo_inv, "ceo")


def test_no_change_is_blamed_without_a_change_verdict(demo_inv):
    ext = dataclasses.replace(demo_inv, verdict="external")
    op = narrate(ext, "operator")
    assert op.startswith("### No rollback") and "Roll back" not in op
    none = dataclasses.replace(demo_inv, verdict="none", divergence={})
    assert "no significant divergence" in narrate(none, "product manager")


def test_next_step_by_kind_and_confidence():
    flag = {"kind": "flag", "target": "f", "scope": {"platform": "ios"}, "confidence": 0.9}
    assert next_step(flag, "change") == "Revert flag f for platform=ios."
    unsure = {**flag, "confidence": 0.2}
    assert next_step(unsure, "change").startswith("Not sure enough to act")
    assert next_step(flag, "data_quality").startswith("Repair the data feed")


def test_the_ui_advice_is_the_answers(demo_inv):
    """The story's advice is the cause's next step of the JSON answer (one source)."""
    op = narrate(demo_inv, "operator")
    step = demo_inv.top_cause["next_step"]
    assert f"- **Do now**: {step[0].upper()}{step[1:]}." in op
