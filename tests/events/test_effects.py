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


T_LEAD = pd.Timestamp("2026-03-10T12:00Z")


def _conversions(seed: int, lead_effect: float = 0.0):
    """Hourly conversions of an exposed group and a 3x larger unexposed one, 10 days;
    the exposed group converts ``lead_effect`` less from 6 h before ``T_LEAD`` on."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-02", periods=24 * 10, freq="1h", tz="UTC")
    n = np.round(4000 * (1 + 0.3 * np.sin(2 * np.pi * ts.hour.to_numpy() / 24))).astype(int)
    p_e = 0.04 * np.where(ts >= T_LEAD - pd.Timedelta("6h"), 1 + lead_effect, 1.0)
    exposed = pd.DataFrame({"ts": ts, "num": rng.binomial(n, p_e).astype(float),
                            "den": n.astype(float)})
    unexposed = pd.DataFrame({"ts": ts, "num": rng.binomial(3 * n, 0.04).astype(float),
                              "den": 3.0 * n})
    return exposed, unexposed


@pytest.mark.parametrize("seed", [33, 37, 61, 75])
def test_six_buckets_of_noise_are_no_pre_trend(seed):
    # no effect at all: the lead's robust error, from its 6 residuals, read |t| of
    # 4.1 to 6.1 on these seeds (8% of 200 seeds passed 3) and the change "began earlier"
    eff = did_effect(*_conversions(seed), T_LEAD, "ratio")
    assert abs(eff.pre_t_stat) < 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_real_lead_is_still_seen(seed):
    eff = did_effect(*_conversions(seed, -0.15), T_LEAD, "ratio")
    assert eff.pre_t_stat < -4 and eff.pre_estimate < -0.1


def _store(tmp_path, seed: int, hit: dict, mult: float, t0: pd.Timestamp):
    """A real DuckDB store: conversion falls by ``1 - mult`` in ``hit`` from ``t0`` on."""
    from workbench.passport import load_passport
    from workbench.store import Store

    from ..conftest import make_events, write_passport

    rng = np.random.default_rng(seed)
    ev = make_events(rng, hours=24 * 10)
    sel = (ev.ts >= t0).to_numpy().copy()
    for k, v in hit.items():
        sel &= (ev[k] == v).to_numpy()
    ev.loc[sel, "conversions"] = rng.binomial(ev.loc[sel, "sessions"], 0.04 * mult)
    st = Store(tmp_path / "s.duckdb")
    st.ingest(load_passport(write_passport(tmp_path / "p", ev, fmt="parquet")))
    return st


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("hit, moved", [({"platform": "ios"}, True),
                                        ({"platform": "ios", "country": "US"}, False)])
def test_the_rest_of_a_scope_is_tested_not_assumed(tmp_path, seed, hit, moved):
    """The localization named iOS in the US, a part of the change's scope (iOS). When
    the whole scope fell (small_effect dev seed 8400104: region=EU fell 4.8%, the
    localization named EU and plan=plus), the rest of it moved too; when only the
    slice fell, the rest stayed put and the coverage penalty stands."""
    from workbench.events.effects import rest_of_scope_moved
    from workbench.store import metric_panel

    t0 = pd.Timestamp("2026-11-08T12:00Z")
    with _store(tmp_path, seed, hit, 0.8, t0) as st:
        sp = st.passport()
        spec = sp.manifest.metric("conversion_rate")

        def panel(scopes, a, b):
            return metric_panel(st.con, sp, spec, scopes, start=a, end=b).frame

        got = rest_of_scope_moved(panel, {"platform": "ios"}, [{"platform": "ios", "country": "US"}],
                                  t0, t0 - pd.Timedelta("7D"), t0 + pd.Timedelta("48h"),
                                  "ratio", -1.0)
        assert got is moved
        # a rise is not the divergence's direction
        assert not rest_of_scope_moved(panel, {"platform": "ios"},
                                       [{"platform": "ios", "country": "US"}], t0,
                                       t0 - pd.Timedelta("7D"), t0 + pd.Timedelta("48h"),
                                       "ratio", +1.0)
