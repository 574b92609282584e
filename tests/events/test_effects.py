"""The difference-in-differences keeps each group's own weekly rhythm (fixed seeds)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.events import did_effect


def _groups(seed: int, *, web_weekend: float, effect: float, change: str):
    """Hourly sessions of web (dips ``web_weekend`` at weekends) and the rest, 9 days."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-02-28", periods=24 * 9, freq="1h", tz="UTC")  # Saturday first
    daily = 1.0 + 0.4 * np.sin(2 * np.pi * (ts.hour.to_numpy() - 8) / 24)
    weekend = ts.day_of_week.to_numpy() >= 5
    post = ts >= pd.Timestamp(change)
    web = 400.0 * daily * np.where(weekend, 1.0 - web_weekend, 1.0) * np.where(post, 1 + effect, 1)
    rest = 3000.0 * daily

    def frame(lam):
        return pd.DataFrame({"ts": ts, "num": rng.poisson(lam).astype(float), "den": 1.0})

    return frame(web), frame(rest)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_weekend_dip_of_one_group_is_not_an_effect(seed):
    # web loses 12% of its sessions every weekend; a change lands Saturday morning and
    # its 48 h post period is the weekend: against a mostly-weekday week it read -10%
    web, rest = _groups(seed, web_weekend=0.12, effect=0.0, change="2026-03-07T06:00Z")
    eff = did_effect(web, rest, pd.Timestamp("2026-03-07T06:00Z"), "sum")
    assert abs(eff.t_stat) < 1.96 and abs(eff.estimate) < 0.03


@pytest.mark.parametrize("seed", [1, 2])
def test_a_real_step_on_a_weekend_is_still_measured(seed):
    web, rest = _groups(seed, web_weekend=0.12, effect=-0.08, change="2026-03-07T06:00Z")
    eff = did_effect(web, rest, pd.Timestamp("2026-03-07T06:00Z"), "sum")
    assert eff.t_stat < -4 and eff.ci_low < -0.08 < eff.ci_high
