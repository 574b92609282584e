"""The start of a change's own effect: a change point after the change (issue 14, delayed effects)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.events.onset import effect_onset

H = pd.Timedelta("1h")
T0 = pd.Timestamp("2026-03-10T12:00:00Z")


def _groups(step_at: int | None, effect: float, seed: int = 11):
    """Hourly binomial conversions of an exposed and an unexposed group, 8 days before T0, 2 after."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(T0 - pd.Timedelta("8D"), T0 + pd.Timedelta("47h"), freq="h")
    daily = 1 + 0.3 * np.sin(2 * np.pi * ts.hour / 24)
    p = 0.05 * daily
    n_e, n_u = (4000 * daily).astype(int), (20000 * daily).astype(int)
    p_e = p.copy()
    if step_at is not None:
        p_e = np.where(ts >= T0 + step_at * H, p * (1 + effect), p)
    ex = pd.DataFrame({"ts": ts, "num": rng.binomial(n_e, p_e), "den": n_e})
    un = pd.DataFrame({"ts": ts, "num": rng.binomial(n_u, p), "den": n_u})
    return ex, un


def test_a_delayed_drop_is_dated_from_its_own_start():
    ex, un = _groups(step_at=4, effect=-0.3)
    est = effect_onset(ex, un, T0, kind="ratio", grain=H, direction_sign=-1.0)
    assert est.accepted and est.delay_grains == 4 and est.start == T0 + 4 * H
    assert est.lr > 12.0 and "4 grain(s) after it" in est.evidence("chg-1")


def test_an_effect_that_starts_with_the_change_keeps_the_change_time():
    ex, un = _groups(step_at=0, effect=-0.3)
    est = effect_onset(ex, un, T0, kind="ratio", grain=H, direction_sign=-1.0)
    assert not est.accepted and est.start == T0 and est.delay_grains == 0


def test_noise_alone_and_a_step_the_wrong_way_date_nothing_late():
    for seed in (1, 2, 3):
        ex, un = _groups(step_at=None, effect=0.0, seed=seed)
        est = effect_onset(ex, un, T0, kind="ratio", grain=H, direction_sign=-1.0)
        assert not est.accepted and est.start == T0
    ex, un = _groups(step_at=3, effect=+0.3)  # a rise, while the divergence is a drop
    assert not effect_onset(ex, un, T0, kind="ratio", grain=H, direction_sign=-1.0).accepted


def test_too_short_a_pre_period_gives_no_estimate():
    ex, un = _groups(step_at=4, effect=-0.3)
    keep = ex["ts"] >= T0 - 10 * H
    assert effect_onset(ex[keep], un[keep], T0, kind="ratio", grain=H,
                        direction_sign=-1.0) is None
