"""Tests of workbench/synth: passports that follow the contract, and truths that hold.

Every generated file is seeded, so these tests are deterministic. Statistical
checks compare the incident window with the same hours one week earlier (same
weekdays and hours of day) and state their tolerance in standard errors of
binomial or Poisson counts.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench.synth import FAMILIES, generate_demo, generate_incident

SEED = 11
LEAF = ["region", "country", "platform", "app_version", "browser", "plan"]
MEASURES = ["sessions", "conversions", "revenue", "latency_ms_sum"]
KINDS = {"deploy", "flag", "config", "infra", "experiment", "external"}
WEEK = pd.Timedelta("7D")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def incidents(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for fam in FAMILIES:
        path = tmp_path_factory.mktemp(fam)
        t0 = time.perf_counter()
        generate_incident(fam, SEED, path)
        print(f"generate_incident({fam!r}, {SEED}): {time.perf_counter() - t0:.2f} s")
        out[fam] = path
    return out


@lru_cache(maxsize=None)
def _load(path: str):
    d = Path(path)
    manifest = yaml.safe_load((d / "passport.yaml").read_text())
    events = pd.read_parquet(d / "events.parquet")
    changes = [json.loads(line) for line in (d / "changes.jsonl").read_text().splitlines()]
    truth = json.loads((d / "truth.json").read_text())
    return manifest, events, changes, truth


def load(path: Path):
    return _load(str(path))


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def in_slice(events: pd.DataFrame, slice_: dict | None) -> np.ndarray:
    mask = np.ones(len(events), dtype=bool)
    for dim, val in (slice_ or {}).items():
        vals = val if isinstance(val, list) else [val]
        mask &= events[dim].isin(vals).to_numpy()
    return mask


def window_vs_week_before(events, truth, mask, num, den):
    """(after, before) sums of num and den in the truth window and one week earlier."""
    start, end = ts(truth["window"][0]), ts(truth["window"][1])
    t = events["ts"]
    after = mask & (t >= start).to_numpy() & (t < end).to_numpy()
    before = mask & (t >= start - WEEK).to_numpy() & (t < end - WEEK).to_numpy()
    return (events.loc[after, num].sum(), events.loc[after, den].sum(),
            events.loc[before, num].sum(), events.loc[before, den].sum())


# ----------------------------------------------------------------------------- API

def test_families_are_the_documented_eight():
    assert FAMILIES == ("scoped_change", "staged_rollout", "latency_regression", "external",
                        "ingestion_gap", "duplicated_batch", "mix_shift", "quiet")


def test_unknown_family_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError) as err:
        generate_incident("meteor_strike", 1, tmp_path)
    for fam in FAMILIES:
        assert fam in str(err.value)


# ----------------------------------------------------------------------------- contract

@pytest.mark.parametrize("family", FAMILIES)
def test_passport_follows_the_contract(incidents, family):
    manifest, events, changes, truth = load(incidents[family])
    assert manifest["time_column"] == "ts" and manifest["grain"] == "1h"
    assert manifest["dimensions"] == ["country", "platform", "app_version", "browser", "plan"]
    assert manifest["hierarchies"] == {"region": "country"}
    for name in manifest["dimensions"] + list(manifest["measures"]) + ["ts", "region"]:
        assert name in events.columns
    for name, spec in manifest["metrics"].items():
        refs = spec["ratio"] if "ratio" in spec else [spec["sum"]]
        assert set(refs) <= set(manifest["measures"]), name
        assert spec["better"] in ("higher", "lower")
    assert manifest["measures"]["revenue"]["unit"] == "EUR"
    assert {"events", "changes"} <= set(manifest["sources"])
    for src in manifest["sources"].values():
        assert src["origin"] and src["extracted_at"] and src["transform"]

    assert str(events["ts"].dt.tz) == "UTC"
    assert (events["ts"].dt.floor("h") == events["ts"]).all()
    for col in LEAF:
        assert events[col].map(type).eq(str).all(), col
    assert events["sessions"].dtype == np.int64 and events["conversions"].dtype == np.int64
    assert events["revenue"].dtype == np.float64 and events["latency_ms_sum"].dtype == np.float64
    assert (events[MEASURES] >= 0).all().all()
    assert (events["conversions"] <= events["sessions"]).all()
    assert (events.loc[events["conversions"] == 0, "revenue"] == 0).all()
    assert (events.loc[events["sessions"] == 0, "latency_ms_sum"] == 0).all()
    assert len(events) <= 300_000

    # each country in exactly one region; realistic platform/version/browser leaves
    assert events.groupby("country")["region"].nunique().max() == 1
    combos = set(map(tuple, events[["platform", "app_version", "browser"]].drop_duplicates().to_numpy()))
    for platform, version, browser in combos:
        if platform == "web":
            assert version == "web" and browser in {"chrome", "safari", "firefox", "edge"}
        else:
            assert platform in {"ios", "android"} and version in {"5.0", "5.1", "5.2"}
            assert browser == "app"

    # realistic volumes before anything happens
    cut = ts(truth["onset"]) if truth["onset"] else events["ts"].max() - pd.Timedelta("4D")
    pre = events[events["ts"] < cut]
    hourly = pre.groupby("ts")[MEASURES].sum()
    assert 15_000 <= hourly["sessions"].mean() <= 30_000
    assert hourly["sessions"].min() < 0.7 * hourly["sessions"].max()  # nights are low
    assert 0.03 <= hourly["conversions"].sum() / hourly["sessions"].sum() <= 0.05
    assert 200 <= hourly["latency_ms_sum"].sum() / hourly["sessions"].sum() <= 400
    assert len(hourly) >= 14 * 24  # two weeks of baseline before the onset


@pytest.mark.parametrize("family", FAMILIES)
def test_change_log_is_busy_and_well_formed(incidents, family):
    manifest, events, changes, truth = load(incidents[family])
    ids = [c["id"] for c in changes]
    assert len(set(ids)) == len(ids)
    stamps = [datetime.strptime(c["ts"], "%Y-%m-%dT%H:%M:%SZ") for c in changes]
    assert stamps == sorted(stamps)
    dims = set(manifest["dimensions"]) | {"region"}
    values = {dim: set(events[dim].unique()) for dim in dims}
    for c in changes:
        assert set(c) == {"id", "ts", "kind", "target", "description", "scope", "rollout", "author"}
        assert c["kind"] in KINDS and c["target"] and c["description"] and c["author"]
        assert "{" not in c["description"]  # no unfilled template
        assert isinstance(c["scope"], dict) and set(c["scope"]) <= dims
        for dim, val in c["scope"].items():
            for v in val if isinstance(val, list) else [val]:
                assert v in values[dim], (dim, v)
        assert c["rollout"] is None or 0 <= c["rollout"] <= 100
    per_day = pd.Series(1, index=pd.DatetimeIndex(stamps)).resample("D").sum()
    assert per_day.between(15, 40).all(), per_day.describe()


@pytest.mark.parametrize("family", FAMILIES)
def test_truth_is_consistent(incidents, family):
    manifest, events, changes, truth = load(incidents[family])
    assert {"family", "seed", "metric", "verdict", "onset", "slice", "culprit_ids", "effect",
            "description"} <= set(truth)
    assert truth["family"] == family and truth["seed"] == SEED
    assert truth["metric"] in manifest["metrics"]
    expected_verdict = {"scoped_change": "change", "staged_rollout": "change",
                        "latency_regression": "change", "external": "external",
                        "ingestion_gap": "data_quality", "duplicated_batch": "data_quality",
                        "mix_shift": "mix_shift", "quiet": "none"}[family]
    assert truth["verdict"] == expected_verdict
    by_id = {c["id"]: c for c in changes}
    assert all(cid in by_id for cid in truth["culprit_ids"])
    if family == "quiet":
        assert truth["onset"] is None and truth["slice"] is None and truth["culprit_ids"] == []
        return
    onset = ts(truth["onset"])
    end = events["ts"].max() + pd.Timedelta("1h")
    assert onset.minute == 0 and pd.Timedelta("2D") <= end - onset <= pd.Timedelta("4D")
    for dim, val in truth["slice"].items():
        assert val in set(events[dim].unique()), (dim, val)
    assert truth["details"]["expected_z"] >= 5.0
    if truth["verdict"] == "change":
        culprits = [by_id[c] for c in truth["culprit_ids"]]
        assert culprits and all(c["scope"] == truth["slice"] for c in culprits)
        assert culprits[0]["ts"] == truth["onset"]
    else:
        assert truth["culprit_ids"] == []


def _hours_apart(a: str, b: str) -> float:
    return abs((ts(a) - ts(b)) / pd.Timedelta("1h"))


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "quiet"])
def test_decoys_crowd_the_onset(incidents, family):
    manifest, events, changes, truth = load(incidents[family])
    near = [c for c in changes if c["id"] not in truth["culprit_ids"]
            and _hours_apart(c["ts"], truth["onset"]) <= 6]
    assert len(near) >= 3
    assert any(c["scope"] == {} for c in near)
    if truth["slice"]:
        siblings = [c for c in near if set(c["scope"]) == set(truth["slice"])
                    and c["scope"] != truth["slice"]]
        assert siblings, "no decoy on the slice's dimensions with another value"
        # no competing change touches the slice near the onset (except global ones)
        mask = in_slice(events, truth["slice"])
        for c in changes:
            if (c["id"] not in truth["culprit_ids"] and c["scope"]
                    and _hours_apart(c["ts"], truth["onset"]) <= 12):
                assert not (mask & in_slice(events, c["scope"])).any(), c


# ----------------------------------------------------------------------------- completeness

@pytest.mark.parametrize("family", [f for f in FAMILIES
                                    if f not in ("ingestion_gap", "duplicated_batch")])
def test_every_leaf_appears_every_hour(incidents, family):
    _, events, _, _ = load(incidents[family])
    per_leaf = events.groupby(LEAF).size()
    n_hours = events["ts"].nunique()
    assert (per_leaf == n_hours).all()
    assert not events.duplicated(["ts"] + LEAF).any()


def test_ingestion_gap_rows_are_really_missing(incidents):
    _, events, _, truth = load(incidents["ingestion_gap"])
    start, end = ts(truth["window"][0]), ts(truth["window"][1])
    hours = (end - start) / pd.Timedelta("1h")
    assert 3 <= hours <= 10
    mask = in_slice(events, truth["slice"])
    in_gap = ((events["ts"] >= start) & (events["ts"] < end)).to_numpy()
    assert not (mask & in_gap).any()
    leaves_in_slice = events.loc[mask, LEAF].drop_duplicates().shape[0]
    leaves_total = events[LEAF].drop_duplicates().shape[0]
    per_hour = events.groupby("ts").size()
    assert (per_hour[per_hour.index < start] == leaves_total).all()
    gap_hours = per_hour[(per_hour.index >= start) & (per_hour.index < end)]
    assert len(gap_hours) == hours and (gap_hours == leaves_total - leaves_in_slice).all()
    assert truth["details"]["missing_rows"] == hours * leaves_in_slice


def test_duplicated_batch_has_exact_duplicate_rows(incidents):
    _, events, _, truth = load(incidents["duplicated_batch"])
    start, end = ts(truth["window"][0]), ts(truth["window"][1])
    dup = events.duplicated(keep="first")
    assert 2 <= (end - start) / pd.Timedelta("1h") <= 8
    assert dup.sum() == truth["details"]["duplicated_rows"] > 0
    rows = events[dup]
    assert rows["ts"].between(start, end - pd.Timedelta("1h")).all()
    assert in_slice(rows, truth["slice"]).all()
    # every key is loaded at most twice, and only the slice in the window at all
    counts = events.groupby(["ts"] + LEAF).size()
    assert set(counts.unique()) == {1, 2}
    in_window = ((events["ts"] >= start) & (events["ts"] < end)).to_numpy()
    assert (in_window & in_slice(events, truth["slice"])).sum() == 2 * dup.sum()


# ----------------------------------------------------------------------------- effects

def _log_ratio_z(c1, s1, c0, s0, effect):
    """(z of the change against 0, z of its distance from the injected effect)."""
    lr = np.log((c1 / s1) / (c0 / s0))
    se = np.sqrt(1 / c1 + 1 / c0)
    return lr / se, (lr - np.log1p(effect)) / se


def test_scoped_change_lowers_conversion_in_the_slice_only(incidents):
    _, events, _, truth = load(incidents["scoped_change"])
    mask = in_slice(events, truth["slice"])
    c1, s1, c0, s0 = window_vs_week_before(events, truth, mask, "conversions", "sessions")
    z_zero, z_effect = _log_ratio_z(c1, s1, c0, s0, truth["effect"])
    assert z_zero < -4 and abs(z_effect) < 4
    c1, s1, c0, s0 = window_vs_week_before(events, truth, ~mask, "conversions", "sessions")
    assert abs(_log_ratio_z(c1, s1, c0, s0, 0.0)[0]) < 4


def test_staged_rollout_has_three_steps_and_a_dosed_effect(incidents):
    _, events, changes, truth = load(incidents["staged_rollout"])
    rows = [c for c in changes if c["id"] in truth["culprit_ids"]]
    assert [r["rollout"] for r in rows] == [10, 50, 100]
    assert len({r["target"] for r in rows}) == 1 and rows[0]["kind"] == "flag"
    gaps = [_hours_apart(a["ts"], b["ts"]) for a, b in zip(rows, rows[1:])]
    assert all(12 <= g <= 24 for g in gaps)
    mask = in_slice(events, truth["slice"])
    full = {**truth, "window": [rows[2]["ts"], truth["window"][1]]}
    c1, s1, c0, s0 = window_vs_week_before(events, full, mask, "conversions", "sessions")
    z_zero, z_effect = _log_ratio_z(c1, s1, c0, s0, truth["effect"])
    assert z_zero < -4 and abs(z_effect) < 4


def test_latency_regression_slows_one_region(incidents):
    _, events, changes, truth = load(incidents["latency_regression"])
    assert set(truth["slice"]) == {"region"} and truth["metric"] == "latency_ms"
    culprit = next(c for c in changes if c["id"] == truth["culprit_ids"][0])
    assert culprit["kind"] in ("infra", "config")
    mask = in_slice(events, truth["slice"])
    l1, s1, l0, s0 = window_vs_week_before(events, truth, mask, "latency_ms_sum", "sessions")
    assert (l1 / s1) / (l0 / s0) - 1 == pytest.approx(truth["effect"], abs=0.1)
    l1, s1, l0, s0 = window_vs_week_before(events, truth, ~mask, "latency_ms_sum", "sessions")
    assert abs((l1 / s1) / (l0 / s0) - 1) < 0.05


def test_external_moves_the_slice_with_no_change_there(incidents):
    _, events, _, truth = load(incidents["external"])
    mask = in_slice(events, truth["slice"])
    if truth["metric"] == "sessions":
        s1, _, s0, _ = window_vs_week_before(events, truth, mask, "sessions", "sessions")
        assert s1 / s0 - 1 == pytest.approx(truth["effect"], abs=0.12)
    else:
        c1, s1, c0, s0 = window_vs_week_before(events, truth, mask, "conversions", "sessions")
        z_zero, z_effect = _log_ratio_z(c1, s1, c0, s0, truth["effect"])
        assert z_zero < -4 and abs(z_effect) < 4


@pytest.mark.parametrize("seed", [SEED, 1, 2])
def test_mix_shift_keeps_cell_rates_and_moves_the_total(tmp_path, incidents, seed):
    path = incidents["mix_shift"] if seed == SEED else generate_incident("mix_shift", seed, tmp_path)
    _, events, _, truth = load(path)
    t = events["ts"]
    start, end = ts(truth["window"][0]), ts(truth["window"][1])
    after = (t >= start) & (t < end)
    before = (t >= start - WEEK) & (t < end - WEEK)
    cells = ["platform", "plan"]
    a = events[after].groupby(cells)[["conversions", "sessions"]].sum()
    b = events[before].groupby(cells)[["conversions", "sessions"]].sum()
    z, _ = _log_ratio_z(a["conversions"], a["sessions"], b["conversions"], b["sessions"], 0.0)
    assert (np.abs(z) < 4).all(), z
    overall = (a["conversions"].sum() / a["sessions"].sum()) / (
        b["conversions"].sum() / b["sessions"].sum()) - 1
    assert abs(overall) >= 0.08 and np.sign(overall) == np.sign(truth["effect"])
    mask = in_slice(events, truth["slice"])
    share_after = events[after & mask]["sessions"].sum() / events[after]["sessions"].sum()
    share_before = events[before & mask]["sessions"].sum() / events[before]["sessions"].sum()
    assert share_after > share_before * 1.1  # the slice's share grew


def test_quiet_has_no_divergence(incidents):
    _, events, _, truth = load(incidents["quiet"])
    assert truth["verdict"] == "none" and truth["effect"] == 0.0
    end = events["ts"].max() + pd.Timedelta("1h")
    fake = {"window": [str(end - pd.Timedelta("3D")), str(end)]}
    c1, s1, c0, s0 = window_vs_week_before(events, fake, np.ones(len(events), bool),
                                           "conversions", "sessions")
    assert abs(_log_ratio_z(c1, s1, c0, s0, 0.0)[0]) < 4


# ----------------------------------------------------------------------------- seeds

def test_same_seed_gives_identical_files(tmp_path):
    for fam in ("staged_rollout", "ingestion_gap"):
        a = generate_incident(fam, 5, tmp_path / f"{fam}-a")
        b = generate_incident(fam, 5, tmp_path / f"{fam}-b")
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir())
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seeds_give_different_incidents(tmp_path):
    truths = []
    for seed in range(5):
        path = generate_incident("scoped_change", seed, tmp_path / str(seed))
        truths.append(json.loads((path / "truth.json").read_text()))
    assert len({t["onset"] for t in truths}) >= 4
    assert len({json.dumps(t["slice"], sort_keys=True) for t in truths}) >= 4
    assert len({tuple(sorted(t["slice"])) for t in truths}) >= 2  # dimensions vary too
    assert len({round(t["effect"], 3) for t in truths}) == 5
    assert all(-0.6 <= t["effect"] <= -0.25 for t in truths)


def test_scale_changes_volume(tmp_path):
    _, events, _, _ = _load(str(generate_incident("quiet", 3, tmp_path, days=10, scale=0.5)))
    assert events["ts"].nunique() == 240
    assert 7_000 <= events.groupby("ts")["sessions"].sum().mean() <= 15_000


# ----------------------------------------------------------------------------- demo

def test_demo_tells_the_checkout_story(tmp_path):
    t0 = time.perf_counter()
    path = generate_demo(tmp_path / "demo")
    print(f"generate_demo: {time.perf_counter() - t0:.2f} s")
    manifest, events, changes, truth = load(path)
    assert manifest["name"] == "shop-web-2026-11"
    assert events["ts"].min() == pd.Timestamp("2026-10-31T00:00Z")
    assert events["ts"].max() == pd.Timestamp("2026-11-20T23:00Z")
    assert truth["onset"] == "2026-11-18T14:00:00Z" and truth["verdict"] == "change"
    assert truth["slice"] == {"platform": "ios", "app_version": "5.2"}
    by_id = {c["id"]: c for c in changes}
    culprit = by_id[truth["culprit_ids"][0]]
    assert culprit["target"] == "new_checkout_flow" and culprit["kind"] == "flag"
    assert culprit["scope"] == truth["slice"] and culprit["author"] not in ("deploy-bot",)
    near = {(c["ts"], c["target"]) for c in changes}
    assert ("2026-11-18T13:00:00Z", "payments-svc") in near
    assert ("2026-11-18T16:00:00Z", "search.ranking.boost_recency") in near
    assert any(c["kind"] == "infra" and "eu-west" in c["target"]
               and _hours_apart(c["ts"], truth["onset"]) <= 6 for c in changes)
    assert any(c["scope"] == {"platform": "android", "app_version": "5.2"} and c["kind"] == "flag"
               and _hours_apart(c["ts"], truth["onset"]) <= 6 for c in changes)
    mask = in_slice(events, truth["slice"])
    c1, s1, c0, s0 = window_vs_week_before(events, truth, mask, "conversions", "sessions")
    assert (c1 / s1) / (c0 / s0) - 1 == pytest.approx(-0.40, abs=0.06)

    exp = pd.read_csv(path / "experiments.csv")
    assert list(exp.columns) == ["ts", "unit_id", "experiment", "variant"]
    assert set(exp["experiment"]) == {"checkout_button_color"} and exp["unit_id"].is_unique
    assert 1_800 <= len(exp) <= 2_200
    share = (exp["variant"] == "treatment").mean()
    assert abs(share - 0.5) < 3 * np.sqrt(0.25 / len(exp))  # no sample-ratio mismatch
    assert sum(p.stat().st_size for p in path.iterdir()) < 4_000_000


def test_bundled_demo_is_up_to_date(tmp_path):
    bundled = REPO / "sample_data" / "demo"
    if not (bundled / "passport.yaml").exists():
        pytest.skip("sample_data/demo is not generated; run python sample_data/make_demo.py")
    fresh = generate_demo(tmp_path / "demo")
    for name in ("passport.yaml", "changes.jsonl", "truth.json", "experiments.csv"):
        assert (fresh / name).read_text() == (bundled / name).read_text(), name
    pd.testing.assert_frame_equal(pd.read_parquet(fresh / "events.parquet"),
                                  pd.read_parquet(bundled / "events.parquet"))
