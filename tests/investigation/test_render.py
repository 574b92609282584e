"""workbench/investigation/render.py: every text from the one answer, with no side effect."""
from __future__ import annotations

import re

import pytest

from workbench.investigation import render as R
from workbench.investigation.hypothesis import advice

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


def test_summary_has_no_side_effect(ios_inv):
    before = dict(ios_inv.record.clock)
    text = R.summary(ios_inv)
    assert ios_inv.summary() == text
    assert dict(ios_inv.record.clock) == before
    assert "top_cause_shown_at" not in ios_inv.record.clock


def test_summary_tells_the_answer(ios_inv):
    text = R.summary(ios_inv)
    assert f"Verdict: {ios_inv.verdict.upper()}" in text
    assert f"Next step: {ios_inv.params['next_step']}" in text
    assert "platform=ios" in text and "chg-1" in text
    times = _TIME.findall(text)
    assert times and all(t.endswith("Z") for t in times)


def test_saved_answer_texts_share_the_time_format(ios_inv):
    a = ios_inv.to_dict()
    md = R.answer_markdown(a)
    lines = "\n".join(R.answer_lines(a))
    assert "| 1 | chg-1 |" in md and "#1 chg-1" in lines
    for text in (md, lines):
        times = _TIME.findall(text)
        assert times and all(t.endswith("Z") for t in times), times


def test_role_stories_take_their_advice_from_hypothesis(ios_inv):
    op = R.narrate(ios_inv, "operator")
    do_now = next(l for l in op.splitlines() if l.startswith("- **Do now**"))
    step = advice(ios_inv.top_cause, ios_inv.verdict, where="platform=ios")
    assert do_now == f"- **Do now**: {step}"
    assert "revert flag new_flow for platform=ios" in do_now.lower()
    pm = R.narrate(ios_inv, "product manager", impact={"delta": -1200.0, "hours": 30},
                   numerator="sessions")
    assert "fewer sessions" in pm and "difference-in-differences" not in pm
    eng = R.narrate(ios_inv, "engineer")
    assert "difference-in-differences" in eng and "Queries" in eng
    with pytest.raises(ValueError, match="expected one of engineer, operator"):
        R.narrate(ios_inv, "ceo")


def test_decisions_markdown():
    assert R.decisions_markdown({}) == "## Decisions\n\nNone recorded."
    md = R.decisions_markdown({"decisions": [{"ts": "2026-11-18T14:00:00Z", "author": "ana",
                                              "hypothesis": "chg-1", "status": "confirmed",
                                              "note": "a|b"}]})
    assert "chg-1 **confirmed**: a\\|b" in md
