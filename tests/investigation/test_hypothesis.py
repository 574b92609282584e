"""workbench/investigation/hypothesis.py: status rules and the one source of advice."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import workbench
from workbench.investigation import hypothesis as H


def cause(**kw) -> dict:
    base = {"change_id": "c1", "kind": "flag", "target": "new_flow", "scope": {"platform": "ios"},
            "confidence": 0.8, "lag_grains": 0.0, "scope_share": 0.9, "traffic_share": 0.3,
            "effect": {"estimate": -0.3, "t_stat": -8.0, "pre_t_stat": 0.2,
                       "pre_estimate": 0.01}, "rollout": 100}
    return {**base, **kw}


def test_status_rules():
    assert H.as_hypothesis(cause(), "sessions", [])["status"] == "supported"
    late = H.as_hypothesis(cause(confidence=0.2, lag_grains=-5), "sessions", [])
    assert late["status"] == "refuted"
    assert late["next_step"] == "none: took effect after the divergence began"
    pre = H.as_hypothesis(cause(confidence=0.2, effect={"estimate": -0.3, "t_stat": -8.0,
                                                       "pre_t_stat": 4.0,
                                                       "pre_estimate": -0.2}), "m", [])
    assert pre["status"] == "refuted" and {"test": "event-study lead",
                                           "result": "pre-trend: refutes"} in pre["tests"]
    unsure = H.as_hypothesis(cause(confidence=0.2), "sessions", [])
    assert unsure["status"] == "open" and unsure["next_step"].startswith("run an A/B test")


def test_a_staged_flag_is_held_not_reverted():
    c = H.as_hypothesis(cause(rollout=25), "sessions", [])
    assert c["next_step"] == ("hold the rollout of new_flow at 25% (or set it to 0%) and "
                              "watch sessions in platform=ios")
    full = H.as_hypothesis(cause(), "sessions", [])
    assert full["next_step"] == "revert flag new_flow for platform=ios"


def test_advice_repeats_the_hypothesis_step():
    c = H.as_hypothesis(cause(), "sessions", [])
    assert H.advice(c, "change") == "Revert flag new_flow for platform=ios."
    assert H.advice(c, "mix_shift", where="country=NL").startswith(
        "No rollback: rates are stable; the traffic mix moved toward country=NL")
    assert H.advice(None, "external").startswith("No change in the log explains it")
    weak = {k: v for k, v in cause(confidence=0.3).items()}
    assert H.advice(weak, "external") == ("Not sure enough to act. If the evidence is "
                                          "confirmed: revert flag new_flow for platform=ios.")
    refuted = H.as_hypothesis(cause(confidence=0.2, lag_grains=-5), "m", [])
    assert H.advice(refuted, "external") == ("Nothing to undo: took effect after the "
                                             "divergence began.")


def test_next_step_of_the_verdict():
    c = H.as_hypothesis(cause(), "sessions", [])
    slices = [{"filter": {"platform": "ios"}}]
    assert H.next_step("change", [c], slices, []) == c["next_step"]
    assert H.next_step("data_quality", [], slices, []).startswith(
        "repair the data feed for platform=ios")
    assert H.next_step("none", [], [], []) == "nothing to do: no significant divergence"


def test_mix_shift_rule_goes_by_magnitudes():
    rm = SimpleNamespace(verdict_hint="", total_change=-0.10, mix_share=0.8, rate_effect=-0.02)
    assert H.is_mix_shift(rm)
    assert not H.is_mix_shift(SimpleNamespace(verdict_hint="", total_change=-0.10,
                                              mix_share=0.8, rate_effect=-0.03))
    assert H.is_mix_shift(SimpleNamespace(verdict_hint="mix_shift"))
    assert not H.is_mix_shift(SimpleNamespace(verdict_hint="", total_change=0.0, mix_share=1.0,
                                              rate_effect=0.0))


def test_advice_is_written_only_here():
    """No other module carries a copy of an advice template (they used to disagree)."""
    root = Path(workbench.__file__).parent
    here = Path(H.__file__)
    templates = list(H._STEP_BY_KIND.values()) + list(H._STEP_BY_VERDICT.values())
    # each template as a pattern: its placeholders match whatever another module put there
    patterns = [re.compile(r".+?".join(re.escape(p) for p in re.split(r"\{\w+\}", t)))
                for t in templates]
    patterns += [re.compile(p) for p in ("Turn flag", "Pause experiment", "Fix or backfill")]
    found = [(p.name, pat.pattern) for p in root.rglob("*.py") if p != here
             for pat in patterns if pat.search(p.read_text(encoding="utf-8"))]
    assert found == []
