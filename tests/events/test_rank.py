"""Ranking changes as causes: scope, alignment, difference-in-differences, dose-response."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.events import did_effect, leaf_deviation, rank_changes, scope_mask
from workbench.events.rank import dose_response

GRAIN = pd.Timedelta("1h")
ONSET = pd.Timestamp("2026-11-18T14:00Z")


def _leaves(affected: dict, drop: float, rng) -> pd.DataFrame:
    """Leaves of platform x country with a rate drop in the affected slice."""
    rows = []
    for p in ("ios", "android", "web"):
        for c in ("DE", "FR", "US", "BR"):
            den = 20000.0
            rate = 0.04
            hit = all({"platform": p, "country": c}[k] == v for k, v in affected.items())
            obs_rate = rate * (1 - drop) if hit else rate
            rows.append({"platform": p, "country": c, "base_num": rate * den, "base_den": den,
                         "obs_num": rng.binomial(int(den), obs_rate), "obs_den": den})
    return pd.DataFrame(rows)


def _series(effect_scope: dict, drop: float, rng, start="2026-11-10", hours=24 * 10,
            change_ts=ONSET, doses=None):
    """series(filter, negate) for a world where ``effect_scope`` drops at ``change_ts``."""
    ts = pd.date_range(start, periods=hours, freq="1h", tz="UTC")
    daily = 1 + 0.3 * np.sin(2 * np.pi * ts.hour / 24)

    def fn(filt: dict, negate: bool) -> pd.DataFrame:
        exposed = (filt == effect_scope) and not negate
        den = np.round(3000 * daily)
        rate = np.full(len(ts), 0.04)
        if exposed:
            if doses:
                for t, share in doses:
                    rate = np.where(ts >= t, 0.04 * (1 - drop * share), rate)
            else:
                rate = np.where(ts >= change_ts, 0.04 * (1 - drop), rate)
        num = rng.binomial(den.astype(int), rate).astype(float)
        return pd.DataFrame({"ts": ts, "num": num, "den": den})

    return fn


def _changes(rows):
    df = pd.DataFrame(rows)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    for c, v in (("rollout", np.nan), ("kind", "deploy"), ("target", "svc")):
        if c not in df:
            df[c] = v
    return df


def test_scope_mask_and_deviation(rng):
    lv = _leaves({"platform": "ios"}, 0.5, rng)
    assert scope_mask(lv, {}).all()
    assert scope_mask(lv, {"platform": "ios"}).sum() == 4
    assert scope_mask(lv, {"platform": ["ios", "web"], "country": "DE"}).sum() == 2
    assert not scope_mask(lv, {"os": "ios"}).any()  # unknown dimension covers nothing
    dev = leaf_deviation(lv, "ratio")
    ios = scope_mask(lv, {"platform": "ios"})
    assert dev[ios].sum() == pytest.approx(-0.5 * 0.04 * 20000 * 4, rel=0.1)
    assert abs(dev[~ios].sum()) < 0.1 * abs(dev[ios].sum())


def test_did_recovers_the_effect_with_an_interval(rng):
    fn = _series({"platform": "ios"}, 0.3, rng)
    eff = did_effect(fn({"platform": "ios"}, False), fn({"platform": "ios"}, True), ONSET, "ratio")
    assert eff.ci_low < eff.estimate < eff.ci_high and abs(eff.estimate + 0.3) < 0.05
    assert eff.t_stat < -10
    assert abs(eff.pre_t_stat) < 3  # no pre-trend
    # one draw's interval may miss; over 30 seeded draws the 95% interval holds the
    # true -30% in most (HAC errors with 3 lags run a little narrow: 25 of 30 here)
    covered = 0
    for seed in range(30):
        f = _series({"platform": "ios"}, 0.3, np.random.default_rng(seed))
        e = did_effect(f({"platform": "ios"}, False), f({"platform": "ios"}, True), ONSET,
                       "ratio")
        covered += e.ci_low < -0.3 < e.ci_high
    assert covered >= 24


def test_did_lead_flags_an_effect_that_began_before_the_change(rng):
    fn = _series({"platform": "ios"}, 0.3, rng, change_ts=ONSET - pd.Timedelta("8h"))
    eff = did_effect(fn({"platform": "ios"}, False), fn({"platform": "ios"}, True), ONSET, "ratio")
    assert eff.pre_t_stat < -3 and eff.pre_estimate < -0.15


def test_scoped_culprit_beats_aligned_global_and_mismatched_decoys(rng):
    scope = {"platform": "ios", "country": "DE"}
    lv = _leaves(scope, 0.5, rng)
    ch = _changes([
        {"id": "culprit", "ts": "2026-11-18T14:00Z", "scope": scope, "kind": "flag"},
        {"id": "global", "ts": "2026-11-18T14:00Z", "scope": {}},
        {"id": "android", "ts": "2026-11-18T13:00Z", "scope": {"platform": "android"}},
        {"id": "late", "ts": "2026-11-18T20:00Z", "scope": scope},
        {"id": "old", "ts": "2026-11-15T14:00Z", "scope": scope},
    ])
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("30h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv,
                       top_slices=[{"filter": scope, "explained_share": 1.0}],
                       series=_series(scope, 0.5, rng))
    ids = [c.change_id for c in res.causes]
    assert ids[0] == "culprit" and res.causes[0].confidence > 0.9
    assert "late" not in ids and "old" not in ids  # outside the candidate window
    android = next(c for c in res.causes if c.change_id == "android")
    assert android.confidence < 0.01
    assert "scope matches the top slice" in res.causes[0].evidence
    assert any("difference-in-differences" in e for e in res.causes[0].evidence)
    assert sum(c.confidence for c in res.causes) + res.external == pytest.approx(1.0)
    assert res.stability >= 0.95  # a clear culprit survives resampling


def test_two_identical_candidates_split_the_confidence(rng):
    scope = {"platform": "ios"}
    lv = _leaves(scope, 0.5, rng)
    ch = _changes([{"id": "a", "ts": "2026-11-18T14:00Z", "scope": scope},
                   {"id": "b", "ts": "2026-11-18T14:00Z", "scope": scope}])
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("30h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv,
                       top_slices=[{"filter": scope, "explained_share": 1.0}],
                       series=_series(scope, 0.5, rng))
    a, b = sorted(c.confidence for c in res.causes)
    assert a == pytest.approx(b, abs=0.05) and a < 0.55  # neither can be told apart


def test_nothing_in_scope_leaves_the_mass_outside_the_log(rng):
    scope = {"country": "BR"}
    lv = _leaves(scope, 0.5, rng)
    ch = _changes([
        {"id": "ios", "ts": "2026-11-18T14:00Z", "scope": {"platform": "ios"}},
        {"id": "global", "ts": "2026-11-18T13:00Z", "scope": {}},
    ])
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("30h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv,
                       top_slices=[{"filter": scope, "explained_share": 1.0}],
                       series=_series(scope, 0.5, rng))
    assert res.external > 0.5
    assert all(c.confidence < 0.5 for c in res.causes)


def test_no_candidates_means_external(rng):
    lv = _leaves({"country": "BR"}, 0.5, rng)
    res = rank_changes(_changes([{"id": "x", "ts": "2026-11-01T00:00Z", "scope": {}}]),
                       onset=ONSET, end=ONSET, grain=GRAIN, kind="ratio",
                       direction_sign=-1.0, leaves=lv, top_slices=[])
    assert res.causes == () and res.external == 1.0


def test_dose_response_of_a_staged_rollout(rng):
    scope = {"platform": "android"}
    t1, t2, t3 = ONSET, ONSET + pd.Timedelta("12h"), ONSET + pd.Timedelta("36h")
    fn = _series(scope, 0.6, rng, hours=24 * 12, doses=[(t1, 0.1), (t2, 0.5), (t3, 1.0)])
    ch = _changes([{"id": f"s{i}", "ts": t, "scope": scope, "kind": "flag", "target": "f",
                    "rollout": r} for i, (t, r) in enumerate([(t1, 10), (t2, 50), (t3, 100)])])
    from workbench.events.rank import CandidateCause

    cause = CandidateCause("s2", "flag", "f", t3, scope, 100.0, 0.9, 0, 1, 0.3, None, ())
    d = dose_response(ch, cause, fn, kind="ratio", grain=GRAIN,
                      end=ONSET + pd.Timedelta("60h"), direction_sign=-1.0)
    assert d.consistent and d.first_step == t1
    effects = [s["effect"] for s in d.steps]
    assert effects[0] > effects[1] > effects[2]  # deeper with every dose
    assert d.slope == pytest.approx(-0.6, abs=0.1)
    assert "effect grows with the exposed share" in d.evidence()


def test_a_switch_off_in_between_cuts_the_ramp(rng):
    """A 1% step, then the flag switched off for everyone, then 10% -> 50% -> 100%:
    the 1% step is not part of the ramp, which is dated from the 10% step. Without
    the switch-off the same 1% step is the ramp's first."""
    scope = {"platform": "web"}
    t0, off = ONSET - pd.Timedelta("4D"), ONSET - pd.Timedelta("3D")
    t1, t2, t3 = ONSET, ONSET + pd.Timedelta("16h"), ONSET + pd.Timedelta("30h")
    fn = _series(scope, 0.6, rng, start="2026-11-04", hours=24 * 17,
                 doses=[(t1, 0.1), (t2, 0.5), (t3, 1.0)])
    steps = [{"id": f"s{i}", "ts": t, "scope": scope, "kind": "flag", "target": "f",
              "rollout": r} for i, (t, r) in enumerate([(t0, 1), (t1, 10), (t2, 50), (t3, 100)])]
    switch_off = {"id": "off", "ts": off, "scope": {}, "kind": "flag", "target": "f",
                  "rollout": 0}
    from workbench.events.rank import CandidateCause

    cause = CandidateCause("s3", "flag", "f", t3, scope, 100.0, 0.9, 0, 1, 0.3, None, ())
    kw = dict(kind="ratio", grain=GRAIN, end=ONSET + pd.Timedelta("70h"), direction_sign=-1.0)
    d = dose_response(_changes(steps + [switch_off]), cause, fn, **kw)
    assert [s["change_id"] for s in d.steps] == ["s1", "s2", "s3"]
    assert d.consistent and d.first_step == t1
    assert d.steps[-1]["t"] < -10  # each step's own t against the pre-period's noise
    whole = dose_response(_changes(steps), cause, fn, **kw)
    assert [s["change_id"] for s in whole.steps] == ["s0", "s1", "s2", "s3"]
    assert whole.first_step == t0


def test_a_change_inside_the_onset_set_is_aligned(rng):
    """The scan put the onset at 14:00 but its 95% set runs to 19:00: the scoped flag at
    18:00 that holds the divergence is then a candidate like one at 14:00 would be."""
    scope = {"country": "BR"}
    late = ONSET + pd.Timedelta("4h")
    lv = _leaves(scope, 0.5, rng)
    ch = _changes([{"id": "late", "ts": late, "scope": scope, "kind": "flag"},
                   {"id": "global", "ts": ONSET, "scope": {}}])
    kw = dict(onset=ONSET, end=ONSET + pd.Timedelta("30h"), grain=GRAIN, kind="ratio",
              direction_sign=-1.0, leaves=lv,
              top_slices=[{"filter": scope, "explained_share": 1.0}],
              series=_series(scope, 0.5, rng, change_ts=late))
    point = {c.change_id: c for c in rank_changes(ch, **kw).causes}
    assert point.get("late") is None or point["late"].confidence < 0.05
    ranked = rank_changes(ch, onset_set=(ONSET - pd.Timedelta("2h"), ONSET + pd.Timedelta("5h")),
                          **kw)
    top = ranked.causes[0]
    assert top.change_id == "late" and top.confidence > 0.5 and top.lag_grains == 0
    assert top.evidence[0].startswith("inside the onset's 95% set")


def test_a_wide_onset_set_does_not_align_a_change_a_day_early(rng):
    """A weak divergence's set can span a day; alignment reaches 6 grains into it, not
    to a flag 20 hours early whose difference-in-differences holds the real shift."""
    scope = {"country": "BR"}
    early = ONSET - pd.Timedelta("20h")
    lv = _leaves(scope, 0.5, rng)
    ch = _changes([{"id": "early", "ts": early, "scope": scope, "kind": "flag"}])
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("30h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv,
                       top_slices=[{"filter": scope, "explained_share": 1.0}],
                       series=_series(scope, 0.5, rng),
                       onset_set=(ONSET - pd.Timedelta("24h"), ONSET + pd.Timedelta("6h")))
    c = res.causes[0]
    assert c.lag_grains == 14  # counted from the set's edge, 6 grains before the onset
    assert not c.evidence[0].startswith("inside the onset's 95% set")
