"""Held-out incident families: what each writes is what its truth says (issue 14)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.synth import FAMILIES, HELDOUT_FAMILIES, generate_incident


def _load(path):
    truth = json.loads((path / "truth.json").read_text())
    changes = pd.read_json(path / "changes.jsonl", lines=True)
    return truth, changes


def test_heldout_families_are_apart_from_the_tuning_ones():
    assert not set(HELDOUT_FAMILIES) & set(FAMILIES) and len(HELDOUT_FAMILIES) >= 7
    with pytest.raises(ValueError, match="nested_decoy"):
        generate_incident("no_such_family", 1, "/nonexistent")


def test_nested_decoy_lands_inside_the_externally_hit_slice(tmp_path):
    truth, changes = _load(generate_incident("nested_decoy", 3, tmp_path))
    assert truth["verdict"] == "external" and truth["culprit_ids"] == [] and truth["heldout"]
    scope = truth["details"]["nested_decoy_scope"]
    assert all(scope[k] == v for k, v in truth["slice"].items()) and len(scope) > 1
    row = changes[[s == scope for s in changes["scope"]]]
    lag = (pd.Timestamp(truth["onset"]) - pd.to_datetime(row["ts"], utc=True)).dt.total_seconds()
    assert ((lag >= 3600) & (lag <= 6 * 3600)).any()


def test_two_changes_name_two_culprits_with_disjoint_scopes(tmp_path):
    truth, changes = _load(generate_incident("two_changes", 4, tmp_path))
    assert len(truth["culprit_ids"]) == 2 and truth["slice"] is None
    a, b = truth["details"]["slices"]
    assert a != b and any(a.get(k) != b.get(k) for k in set(a) & set(b))


def test_late_tail_drops_rows_only_in_the_last_hours(tmp_path):
    path = generate_incident("late_tail", 5, tmp_path)
    truth, _ = _load(path)
    assert truth["accept_verdicts"] == ["none", "data_quality"]
    ev = pd.read_parquet(path / "events.parquet", columns=["ts"])
    per_hour = ev.groupby("ts").size().to_numpy()
    k = truth["details"]["late_hours"]
    assert (per_hour[:-k] == 450).all()
    assert np.mean(1 - per_hour[-k:] / 450) == pytest.approx(truth["details"]["missing_share"],
                                                          abs=1e-4)


def test_mix_with_deploy_adds_a_harmless_web_deploy_near_the_onset(tmp_path):
    truth, changes = _load(generate_incident("mix_with_deploy", 6, tmp_path))
    assert truth["verdict"] == "mix_shift" and truth["culprit_ids"] == []
    near = changes[(pd.to_datetime(changes["ts"], utc=True) - pd.Timestamp(truth["onset"]))
                   .abs() <= pd.Timedelta("1h")]
    assert any(s == {"platform": "web"} and k == "deploy"
               for s, k in zip(near["scope"], near["kind"]))


def test_effect_scale_weakens_the_incident_and_says_so(tmp_path):
    full, _ = _load(generate_incident("scoped_change", 8, tmp_path / "a"))
    weak, _ = _load(generate_incident("scoped_change", 8, tmp_path / "b", effect_scale=0.3))
    assert weak["details"]["effect_scale"] == 0.3 and "effect_scale" not in full["details"]
    assert weak["effect"] == pytest.approx(-(1 - (1 + full["effect"]) ** 0.3), abs=1e-4)
    assert abs(weak["effect"]) < abs(full["effect"]) and weak["onset"] == full["onset"]
    with pytest.raises(ValueError, match="effect_scale"):
        generate_incident("scoped_change", 8, tmp_path / "c", effect_scale=1.5)
