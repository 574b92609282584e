"""The joint model of concurrent changes: each change's effect with the others held fixed.

The panel comes from a real DuckDB store (``metric_panel``), so the atoms and
the model are tested together. Two changes land in the same hour: a flag for
iOS and a deploy for iOS in Brazil. Only one of them does harm; the joint model
must say which, where a per-change comparison blames both.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.events import did_effect
from workbench.events.joint import joint_effects
from workbench.passport import load_passport
from workbench.store import Store, metric_panel, metric_series

from ..conftest import make_events, write_passport

T0 = pd.Timestamp("2026-11-08T12:00Z")
IOS = {"platform": "ios"}
IOS_BR = {"platform": "ios", "country": "BR"}


def _store(tmp_path, rng, harmful: dict):
    ev = make_events(rng, hours=24 * 10)
    hit = (ev.ts >= T0).to_numpy().copy()
    for k, v in harmful.items():
        hit &= (ev[k] == v).to_numpy()
    ev.loc[hit, "conversions"] = rng.binomial(ev.loc[hit, "sessions"], 0.04 * 0.7)
    st = Store(tmp_path / "s.duckdb")
    st.ingest(load_passport(write_passport(tmp_path / "p", ev, fmt="parquet")))
    return st


@pytest.mark.parametrize("harmful, guilty, innocent", [(IOS, 0, 1), (IOS_BR, 1, 0)])
def test_joint_model_names_the_change_that_did_it(tmp_path, rng, harmful, guilty, innocent):
    with _store(tmp_path, rng, harmful) as st:
        sp = st.passport()
        spec = sp.manifest.metric("conversion_rate")
        panel = metric_panel(st.con, sp, spec, [IOS, IOS_BR]).frame
        assert set(panel["atom"]) == {0, 1, 3}  # not iOS, iOS elsewhere, iOS in Brazil
        tot = metric_series(st.con, sp, spec).frame
        np.testing.assert_allclose(panel.groupby("ts")["num"].sum().to_numpy(),
                                   tot["num"].to_numpy())
        fx = joint_effects(panel, [T0, T0], kind="ratio", grain=pd.Timedelta("1h"))
        g, i = fx.effects[guilty], fx.effects[innocent]
        assert g.identified and i.identified
        assert g.t_stat < -4 and -0.40 < g.estimate < -0.20
        assert g.ci_low < -0.3 < g.ci_high
        assert i.ci_low < 0.0 < i.ci_high  # held fixed against the guilty one: nothing left
        if harmful == IOS_BR:
            # a per-change comparison blames the innocent flag: iOS as a whole fell
            ex = metric_series(st.con, sp, spec, filter=IOS).frame
            un = metric_series(st.con, sp, spec, filter=IOS, negate=True).frame
            marginal = did_effect(ex, un, T0, "ratio")
            assert marginal.t_stat < -1.96  # its 95% interval excludes zero


def test_twin_changes_are_reported_as_inseparable(tmp_path, rng):
    with _store(tmp_path, rng, IOS) as st:
        sp = st.passport()
        spec = sp.manifest.metric("conversion_rate")
        panel = metric_panel(st.con, sp, spec, [IOS, IOS, {"country": "DE"}]).frame
        fx = joint_effects(panel, [T0, T0, T0], kind="ratio", grain=pd.Timedelta("1h"))
        assert fx.effects[0].identified and fx.effects[0].t_stat < -4
        assert not fx.effects[1].identified and "cannot separate" in fx.effects[1].reason
        assert fx.effects[2].identified


def test_a_scope_covering_everything_is_not_identified(tmp_path, rng):
    with _store(tmp_path, rng, IOS) as st:
        sp = st.passport()
        spec = sp.manifest.metric("conversion_rate")
        panel = metric_panel(st.con, sp, spec, [IOS, {"region": ["EU", "NA", "LATAM"]}]).frame
        fx = joint_effects(panel, [T0, T0], kind="ratio", grain=pd.Timedelta("1h"))
        assert not fx.effects[1].identified and "every group" in fx.effects[1].reason


def test_metric_panel_rejects_too_many_scopes(tmp_path, rng):
    from workbench.errors import UsageError

    with _store(tmp_path, rng, IOS) as st:
        sp = st.passport()
        with pytest.raises(UsageError, match="1 to 16 scopes"):
            metric_panel(st.con, sp, sp.manifest.metric("sessions"), [])


def test_near_twin_changes_are_reported_as_inseparable(tmp_path, rng):
    """The same scope changed twice an hour apart: the two exposures differ in one
    bucket, so their separate effects rest on that bucket's noise (small_effect dev
    seed 8400005: t = -2.3 and +2.8 for two changes to android an hour apart, and the
    first "carried" the divergence of another scope). The later one is not identified;
    the other carries the pair's effect."""
    with _store(tmp_path, rng, IOS) as st:
        sp = st.passport()
        spec = sp.manifest.metric("conversion_rate")
        panel = metric_panel(st.con, sp, spec, [IOS, IOS, {"country": "DE"}]).frame
        hour = pd.Timedelta("1h")
        fx = joint_effects(panel, [T0, T0 + hour, T0], kind="ratio", grain=hour)
        kept, twin = fx.effects[0], fx.effects[1]
        assert not twin.identified and "nearly repeats change #0" in twin.reason
        assert kept.identified and kept.t_stat < -4 and -0.40 < kept.estimate < -0.20
        assert fx.effects[2].identified and fx.effects[2].ci_low < 0.0 < fx.effects[2].ci_high
        # a day apart, the data tell them apart: both identified
        fx = joint_effects(panel, [T0 - 24 * hour, T0, T0], kind="ratio", grain=hour)
        assert fx.effects[0].identified and fx.effects[1].identified


def test_an_emptied_exposure_does_not_make_the_others_inseparable():
    from workbench.events.joint import _separable

    rng = np.random.default_rng(7)
    a, c = rng.normal(size=500), rng.normal(size=500)
    near = a + 0.05 * rng.normal(size=500)
    keep, dropped = _separable(np.column_stack([a, near, c]), np.ones(500), 10.0)
    assert keep == [0, 2] and dropped[1][0] == 0 and dropped[1][1] > 100
    # a column the fixed effects left empty is the fit's to report, not a near-twin
    keep, dropped = _separable(np.column_stack([a, np.zeros(500), c]), np.ones(500), 10.0)
    assert keep == [0, 1, 2] and not dropped
