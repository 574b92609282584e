"""Two rules of issue 14 on generated incidents (seeds fixed: the stories are the same on every run).

- A small effect (2-5%) in a large slice: the change log's targeted test finds it, dated from the change,
  (the step is tested against a trend only when the contrast drifts before the
  change, :mod:`workbench.detect.scopes`).
- The joint model of concurrent changes explains a change away only when another
  member carries the effect: three flags/deploys on ``plan`` values that together
  cover everyone left no never-exposed group, the joint estimate of the real
  culprit (a guest-checkout flag for ``plan=pro``, felt 4 h after it landed)
  lost its precision, and it was capped as "no effect of its own".
"""
from __future__ import annotations

import json

from workbench.investigation import investigate
from workbench.synth import generate_incident


def _run(tmp_path, family, seed):
    p = generate_incident(family, seed, tmp_path / "p")
    truth = json.loads((p / "truth.json").read_text())
    inv = investigate(p, metric=truth["metric"], db=tmp_path / "s.duckdb", artifact_dir=None,
                      verify=False)
    return truth, inv


def test_a_small_effect_is_found_by_its_change_scope(tmp_path):
    truth, inv = _run(tmp_path, "small_effect", 17000)
    assert -0.05 < truth["effect"] < -0.02
    # before: "none", the step lost to a trend spanning it; now the targeted test finds
    # it, dated from the change (the time named before looking), and the change leads
    assert inv.verdict != "none" and inv.divergence["scope"] == truth["slice"]
    assert inv.divergence["onset"] == truth["onset"]
    assert inv.causes[0]["change_id"] in truth["culprit_ids"]


def test_the_joint_model_does_not_clear_a_culprit_without_naming_another(tmp_path):
    truth, inv = _run(tmp_path, "delayed_effect", 16002)
    top = inv.causes[0]
    assert inv.verdict == "change" and top["change_id"] in truth["culprit_ids"]
    assert top["confidence"] >= 0.5  # before: 0.14, "no effect of its own"
    assert any("none of the others carries the effect" in e for e in top["evidence"])


def _run_said(tmp_path, family, seed):
    said: list[str] = []
    p = generate_incident(family, seed, tmp_path / "p")
    truth = json.loads((p / "truth.json").read_text())
    inv = investigate(p, metric=truth["metric"], db=tmp_path / "s.duckdb", artifact_dir=None,
                      verify=False, progress=said.append)
    return truth, inv, said


def test_a_divergence_found_only_through_a_change_needs_its_corrected_effect(tmp_path):
    # Nothing diverged; the targeted test of 43 changes' scopes picked country=ES|NL
    # (t = -7.1 against the rest, HAC errors) and the window test agreed (p = 0.03). The
    # ranking measured the flag again, jointly with the changes around it: t = -3.2,
    # short of the |t| >= 3.25 one of 43 looks needs. Before: "change", blamed at 99%.
    truth, inv, said = _run_said(tmp_path, "late_tail", 7613000)
    assert truth["verdict"] == "none"
    assert any(m.startswith("targeted test of the scope of chg-0475") for m in said)
    assert any(m.startswith("not confirmed: chg-0475's effect") for m in said)
    assert inv.verdict == "none" and not inv.causes
    assert inv.divergence["late_data"]["missing_share"] > 0.3


def test_the_targeted_window_must_diverge_the_way_the_change_did(tmp_path):
    # the targeted test named plan=free (-0.8% against the rest, t = -3.9) but its window
    # rose (+1.8%, p = 0.03): the window found something else than the change's effect.
    # Before: "external" on that window.
    truth, inv, said = _run_said(tmp_path, "late_tail", 7613001)
    assert truth["verdict"] == "none"
    assert not any("targeted test of the scope" in m for m in said)
    assert inv.verdict == "none"
