"""Dating the divergence: the onset, its 95% set and where the reported onset came from.

Three generated incidents whose onset was misdated before (seeds fixed, so the
stories are the same on every run): a staged rollout whose flag had a 1% step
days before its 10% -> 50% -> 100% ramp, and a mix shift whose second slice has
a noise bump five hours before the true onset, and a scoped change in a small
slice whose scan onset fell three hours early.
"""
from __future__ import annotations

import json

import pandas as pd

from workbench.investigation import investigate
from workbench.synth import generate_incident


def _run(tmp_path, family, seed):
    p = generate_incident(family, seed, tmp_path / "p")
    truth = json.loads((p / "truth.json").read_text())
    inv = investigate(p, metric=truth["metric"], db=tmp_path / "s.duckdb", artifact_dir=None)
    return truth, inv.to_dict()


def _hours(a, b) -> float:
    return abs((pd.Timestamp(a) - pd.Timestamp(b)) / pd.Timedelta("1h"))


def test_staged_rollout_is_dated_from_its_first_felt_step(tmp_path):
    truth, d = _run(tmp_path, "staged_rollout", 11089157)
    div = d["divergence"]
    assert d["verdict"] == "change" and d["causes"][0]["change_id"] in truth["culprit_ids"]
    assert _hours(div["onset"], truth["onset"]) <= 2  # the 10% step, not the 1% or the 100%
    assert div["onset_source"].startswith("first step of the rollout")
    lo, hi = div["onset_interval"]
    assert pd.Timestamp(lo) <= pd.Timestamp(hi)


def test_a_mix_shift_is_not_redated_on_a_slice_rate(tmp_path):
    """Its slices' rates did not move: a noise bump in one of them must not date it."""
    truth, d = _run(tmp_path, "mix_shift", 11094160)
    div = d["divergence"]
    assert d["verdict"] == "mix_shift"
    assert _hours(div["onset"], truth["onset"]) <= 2
    assert div["onset_source"] == "scan of the total"
    lo, hi = (pd.Timestamp(t) for t in div["onset_interval"])
    assert lo <= pd.Timestamp(div["onset"]) <= hi


def test_the_named_cause_dates_a_flat_onset(tmp_path):
    """A small slice at night: the scan's onset wanders inside a flat likelihood; the
    change the evidence names, inside the onset's 95% set, dates it (and says so)."""
    truth, d = _run(tmp_path, "scoped_change", 11088159)
    div, top = d["divergence"], d["causes"][0]
    assert d["verdict"] == "change" and top["change_id"] in truth["culprit_ids"]
    assert div["onset_source"].startswith(f"time of {top['change_id']}")
    assert _hours(div["onset"], truth["onset"]) <= 1
    assert any(e.startswith("the divergence is dated from this change") for e in top["evidence"])


def test_a_window_given_bounds_the_slice_scan_too(tmp_path):
    """Sessions did not diverge in total on 18 November; the slice scan must look inside
    that window, not report Italy's bump three days before it."""
    from pathlib import Path

    demo = Path(__file__).resolve().parents[2] / "sample_data" / "demo"
    inv = investigate(demo, metric="sessions", window="2026-11-18T00:00Z/2026-11-19T00:00Z",
                      db=tmp_path / "s.duckdb", artifact_dir=None)
    # nothing diverged that day: a scan that looked outside the window would report
    # Italy's bump instead (the whole-data run below finds a divergence)
    assert inv.verdict == "none" and inv.divergence.get("onset") is None
    assert inv.slices == () and inv.causes == ()
    # over all the data the scan meets Italy's bump of 15 November (sessions +14% for 5 hours,
    # z = 5.2 against Italy's own baseline), which the window kept out; the whole feed rose
    # with it and Italy's share of it stayed within its noise, so it is no divergence of
    # Italy's own either (a sum's slice must move against the rest: slicing._share_holds)
    from workbench.detect import DetectConfig, detect_divergence

    ev = pd.read_parquet(demo / "events.parquet")
    it = ev[ev["country"] == "IT"].groupby("ts")["sessions"].sum()
    det = detect_divergence(pd.DataFrame({"num": it, "den": 1.0}), kind="sum", better="higher",
                            config=DetectConfig(alpha=0.01 / 40))
    assert det.significant and str(det.onset)[:10] == "2026-11-15"
    full = investigate(demo, metric="sessions", db=tmp_path / "s.duckdb", artifact_dir=None)
    assert full.verdict == "none"
