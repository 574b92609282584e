"""workbench/ui/narrative.py: same facts, three readers."""
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
    assert next_step(flag, "change").startswith("Turn flag f off for platform=ios")
    unsure = {**flag, "confidence": 0.2}
    assert next_step(unsure, "change").startswith("Not sure enough to act")
    assert "backfill" in next_step(flag, "data_quality")
