"""The exposure schedule of a change (no DoWhy needed)."""
from __future__ import annotations

import pandas as pd

from workbench.causal._table import dose_schedule

H = pd.Timedelta("1h")
T = pd.Timestamp("2026-11-18T14:00:00Z")


def _log(rows):
    return pd.DataFrame([{"id": i, "ts": T + h * H, "target": tgt, "scope": sc, "rollout": r}
                         for i, (h, tgt, sc, r) in enumerate(rows)])


def _schedule(cause_h, rollout, rows, scope=None):
    cause = {"ts": (T + cause_h * H).isoformat(), "target": "flag_a",
             "scope": scope or {"platform": "ios"}, "rollout": rollout}
    out = dose_schedule(cause, _log(rows), grain=H, start=T - 240 * H, end=T + 72 * H)
    return [((t - T) / H, d) for t, d in out]


IOS = {"platform": "ios"}


def test_a_ramp_scales_the_dose():
    rows = [(0, "flag_a", IOS, 10.0), (12, "flag_a", IOS, 50.0), (30, "flag_a", IOS, 100.0),
            (5, "flag_a", {"platform": "web"}, 100.0), (6, "flag_b", IOS, 100.0)]
    assert _schedule(0, 10.0, rows) == [(0, 0.1), (12, 0.5), (30, 1.0)]
    # verifying the 50% step: the 10% step before it belongs to the same rollout
    assert _schedule(12, 50.0, rows) == [(0, 0.1), (12, 0.5), (30, 1.0)]


def test_a_repeated_enable_is_not_an_earlier_start():
    rows = [(-50, "flag_a", IOS, 100.0), (0, "flag_a", IOS, 100.0)]
    assert _schedule(0, 100.0, rows) == [(0, 1.0)]


def test_a_rollback_ends_the_exposure():
    rows = [(0, "flag_a", IOS, 100.0), (20, "flag_a", IOS, 0.0)]
    assert _schedule(0, 100.0, rows) == [(0, 1.0), (20, 0.0)]


def test_a_change_without_rollout_exposes_its_scope():
    rows = [(-5, "flag_a", IOS, 10.0)]
    assert _schedule(0, None, rows) == [(0, 1.0)]
