"""A step that comes long after a change, or before it, is not its effect (issue 14, external
false blame).

An outside event hit a slice half a day after a change scoped to it had landed;
the change's difference-in-differences, measured from its own time, held the
event's step, and the change was blamed. Its exposed units did not move for
the first hours: the contrast's change point lies later than any delay a
change is given (:func:`workbench.events.onset.foreign_step`). A step before the
change is not its effect either: a change does not act before it lands.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pandas as pd

from workbench.events.onset import effect_onset, foreign_step, late_effect
from .test_onset import T0, H, _groups
from .test_trust_rules import _run


def _late(ex, un, sign=-1.0):
    return foreign_step(ex, un, T0, kind="ratio", grain=H, direction_sign=sign, max_lag=12,
                        penalty=12.0)


def test_a_step_fifteen_hours_after_the_change_is_late():
    ex, un = _groups(step_at=15, effect=-0.3, seed=21)
    est = _late(ex, un)
    assert est is not None and est.accepted and abs(est.delay_grains - 15) <= 1
    assert est.start == T0 + est.delay_grains * H and est.lr > 12.0
    assert "not its own effect" in est.late_evidence(12)


def test_a_step_hours_before_the_change_is_not_its_effect():
    ex, un = _groups(step_at=-6, effect=-0.3, seed=28)
    est = _late(ex, un)
    assert est is not None and est.accepted and est.delay_grains < -1
    assert est.start == T0 + est.delay_grains * H
    assert "before it" in est.late_evidence(12) and "does not act before it lands" \
        in est.late_evidence(12)
    ex, un = _groups(step_at=-1, effect=-0.3, seed=29)  # a log stamped an hour late
    assert _late(ex, un) is None


def test_an_effect_from_the_change_or_a_short_delay_is_not_late():
    for step, seed in ((0, 22), (4, 23), (11, 24)):
        ex, un = _groups(step_at=step, effect=-0.3, seed=seed)
        assert _late(ex, un) is None, step
    for seed in (1, 2, 3):  # noise alone
        ex, un = _groups(step_at=None, effect=0.0, seed=seed)
        assert _late(ex, un) is None
    ex, un = _groups(step_at=15, effect=+0.3, seed=25)  # a late rise, the divergence a drop
    assert _late(ex, un) is None


def test_an_effect_from_the_change_that_grows_later_stays_the_change_s():
    ex, un = _groups(step_at=0, effect=-0.15, seed=26)
    ex2, _ = _groups(step_at=20, effect=-0.3, seed=26)
    late = ex2["ts"] >= T0 + 20 * H
    ex.loc[late, "num"] = ex2.loc[late, "num"]  # -15% from the change, -30% from +20 h
    assert _late(ex, un) is None


def test_a_later_dose_of_the_same_rollout_explains_a_later_step():
    ex, un = _groups(step_at=15, effect=-0.3, seed=21)
    first = NS(id="c1", ts=T0, kind="flag", target="f", scope={"plan": "pro"}, rollout=10.0)
    log = pd.DataFrame([vars(first), dict(vars(first), id="c2", ts=T0 + 15 * H, rollout=50.0)])
    kw = dict(kind="ratio", grain=H, direction_sign=-1.0, max_lag=12, penalty=12.0)
    assert late_effect(first, log, ex, un, **kw) is None
    alone = log.iloc[:1]
    assert late_effect(first, alone, ex, un, **kw).delay_grains > 12


def test_the_vectorized_profile_dates_delays_as_one_fit_per_start_did():
    # the delayed start keeps its answers (tests/events/test_onset.py) with one solve
    ex, un = _groups(step_at=6, effect=-0.3, seed=27)
    est = effect_onset(ex, un, T0, kind="ratio", grain=H, direction_sign=-1.0)
    ts = ex["ts"]
    d = np.log(ex["num"] / ex["den"]) - np.log(un["num"] / un["den"])
    w = np.minimum(ex["den"], un["den"]).to_numpy(dtype=float)
    hours = pd.get_dummies(ts.dt.hour, drop_first=True, dtype=float).to_numpy()
    rss = []
    for k in range(13):
        X = np.column_stack([np.ones(len(d)), ts >= T0 + k * H, hours]) * np.sqrt(w)[:, None]
        beta, *_ = np.linalg.lstsq(X, d * np.sqrt(w), rcond=None)
        r = d * np.sqrt(w) - X @ beta
        rss.append(float(r @ r))
    assert est.delay_grains == int(np.argmin(rss)) == 6
    assert abs(est.lr - len(d) * np.log(rss[0] / rss[6])) < 1e-6 * est.lr


def test_a_change_landing_half_a_day_before_an_outside_surge_is_not_blamed(tmp_path):
    # Press coverage raised APAC's sessions +59% at 11:00; an infra change for region=APAC
    # landed at 20:00 the evening before. Before: "change", chg-0424 at 75%, the onset
    # dated 12 grains after it. Its exposed units moved only 15 h after it.
    truth, inv = _run(tmp_path, "external", 33003002)
    assert truth["verdict"] == "external" and truth["slice"] == {"region": "APAC"}
    assert inv.verdict == "external"
    assert max(c["confidence"] for c in inv.causes) < 0.5
    assert inv.divergence["onset"] == truth["onset"]
    c = next(c for c in inv.causes if c["change_id"] == "chg-0424")
    assert c["own_effect"] is False
    assert any("diverged only 15 grain(s) after it" in e for e in c["evidence"])


def test_a_change_landing_before_a_payment_outage_is_not_blamed(tmp_path):
    # A local payment provider failed in BR at 13:00; a change for region=LATAM landed at
    # midnight. Before: "change", chg-0402 at 61%.
    truth, inv = _run(tmp_path, "external", 32003001)
    assert truth["verdict"] == "external" and inv.verdict == "external"
    assert max(c["confidence"] for c in inv.causes) < 0.5
    c = next(c for c in inv.causes if c["change_id"] == "chg-0402")
    assert c["own_effect"] is False and c["confidence"] < 0.1
