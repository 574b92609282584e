"""`workbench loop` on the bundled demo: the culprit is confirmed, an innocent change refuted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.experiments.templates import plan_experiment
from workbench.governance.audit import read_audit, verify_audit

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "demo"


def _loop(tmp_path, capsys, cause, *extra):
    rc = main(["loop", str(DEMO), "--metric", "conversion_rate", "--cause", cause,
               "--template", "rollback", "--dose", "50", "--hours", "6", "--json", "-q",
               "--audit", str(tmp_path / "audit.jsonl"), "--workdir", str(tmp_path / "loop"),
               "--db", str(tmp_path / "store.duckdb"), *extra])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_rollback_confirms_the_culprit_and_refutes_an_innocent(tmp_path, capsys):
    top = _loop(tmp_path, capsys, "chg-0431")
    assert top["status"] == "confirmed" and top["hours_to_decision"] <= 6
    a = top["action"]
    assert (a["template"], a["dose"], a["provider"]) == ("rollback", 50.0, "flagd-file")
    assert a["intent_audit_seq"] < a["outcome_audit_seq"] < a["concluded_audit_seq"]
    last = top["updates"][-1]
    assert set(last) >= {"ts", "confidence", "effect", "ci_low", "ci_high", "hypotheses"}
    assert last["hypotheses"][0] == {"change_id": "chg-0431", "confidence": last["confidence"]}
    assert 0 < last["ci_low"] <= last["effect"] <= last["ci_high"] and last["confidence"] > 0.99
    assert top["readout"]["comparisons"][0]["arm"] == "reverted"
    assert "a real improvement" in top["readout"]["summary"]
    # the batches went through the ingest path into the loop's own store
    assert len(top["batches"]) == top["hours_to_decision"]
    assert top["next_steps"][0].startswith("roll back chg-0431")

    second = _loop(tmp_path, capsys, "chg-0430")
    assert second["status"] == "refuted"
    assert second["divergence"]["persists"] and "persists" in second["divergence"]["text"]
    steps = " ".join(second["next_steps"])
    for words in ("data quality", "external factors", "next hypothesis: chg-0431",
                  "instrumentation"):
        assert words in steps
    log = tmp_path / "audit.jsonl"
    recs = read_audit(log)
    outcomes = {(r.subject, r.details.get("status")) for r in recs
                if r.action in ("action.outcome", "experiment.concluded")}
    assert {("chg-0431", "applied"), ("chg-0431", "confirmed"), ("chg-0430", "applied"),
            ("chg-0430", "refuted")} <= outcomes
    assert sum(r.action == "action.intent" for r in recs) == 2 and verify_audit(log).ok


def test_an_unranked_cause_is_one_clear_line(tmp_path, capsys):
    rc = main(["loop", str(DEMO), "--metric", "conversion_rate", "--cause", "chg-9999",
               "-q", "--audit", str(tmp_path / "a.jsonl"), "--workdir", str(tmp_path),
               "--db", str(tmp_path / "store.duckdb")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "--cause chg-9999 is not among the ranked causes" in err and "chg-0431" in err
    assert not (tmp_path / "a.jsonl").exists()


@pytest.mark.parametrize("template, doses", [("rollback", [[0, 50.0]]),
                                             ("dose_ramp", [[0, 10.0], [4, 50.0]]),
                                             ("holdout", [[0, 10.0]])])
def test_templates_fill_every_field(template, doses):
    p = plan_experiment({"change_id": "chg-1", "scope": {"platform": "ios"}}, template=template,
                        metric="conversion_rate", expected_effect=0.01, rate=0.04,
                        sessions_per_hour=2000, hours=12, guardrails=("latency_ms",))
    d = p.to_dict()
    assert d["doses"] == doses and d["flag"] == f"wb-{template.replace('_', '-')}-chg-1"
    assert d["scope"] == {"platform": "ios"} and d["guardrails"] == ("latency_ms",)
    assert len(d["stop_rules"]) == 4 and d["power"]["hours_sequential"] >= 1


def test_a_dose_ramp_steps_up_through_the_ledger(tmp_path):
    from workbench.experiments.loop import run_loop
    from workbench.passport import load_passport

    cause = {"change_id": "chg-0431", "scope": {"platform": "ios", "app_version": "5.2"},
             "ts": "2026-11-18T14:00:00Z", "confidence": 0.5}
    r = run_loop(load_passport(DEMO), metric="conversion_rate", cause=cause,
                 template="dose_ramp", hours=3, min_hours=3, workdir=tmp_path / "w",
                 audit=tmp_path / "audit.jsonl", seed=3)
    assert [u["dose"] for u in r.updates] == [10.0, 50.0, 50.0]
    recs = read_audit(tmp_path / "audit.jsonl")
    assert [r_.details.get("dose") for r_ in recs if r_.action == "action.intent"] == [10.0, 50.0]
    flags = json.loads((tmp_path / "w" / "flags.json").read_text())["flags"]
    assert flags["wb-dose-ramp-chg-0431"]["targeting"]["if"][1] == {
        "fractional": [["reverted", 50], ["kept", 50]]}
    assert r.updates[-1]["effect"] > 0  # the reverted units convert better


def test_the_board_moves_together():
    from workbench.experiments.loop import board_update

    causes = [{"change_id": "a", "confidence": 0.6}, {"change_id": "b", "confidence": 0.3}]
    b = {d["change_id"]: d["confidence"] for d in board_update(causes, "b", 0.3, 0.02)}
    assert b["b"] == 0.02 and b["a"] == pytest.approx(0.6 * 0.98 / 0.7, abs=1e-6)
    assert sum(b.values()) <= 1
