"""Counterfactual timelines in the divergence's scope: lag, ramp, seasonality, total effect.

Scored against the generator's true no-change series (``no_change.csv``): the
conversions the slice's sampled sessions would have made without the change.
"""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.causal._table import dose_schedule
from workbench.causal.counterfactual import region_of, scope_counterfactual

from .conftest import _incident


@pytest.fixture(scope="module")
def delayed(tmp_path_factory):
    """A flag/config whose effect starts 2-5 h after it (held-out family)."""
    return _incident(tmp_path_factory, "delayed_effect", 3)


def _culprit_cf(inc, **kw):
    with inc.store() as st:
        sp = st.passport()
        spec = sp.manifest.metric(inc.truth["metric"])
        ch = st.changes(sp.name)
        row = ch[ch["id"].isin(inc.truth["culprit_ids"])].sort_values("ts").iloc[0]
        grain = sp.manifest.grain_td
        t0 = pd.Timestamp(row["ts"]).floor(grain)
        end = pd.Timestamp(inc.truth["window"][1]) - grain
        cause = {"change_id": row["id"], "ts": row["ts"], "scope": row["scope"],
                 "target": row["target"], "rollout": row["rollout"]}
        sched = dose_schedule(cause, ch, grain=grain, start=t0, end=end + grain)
        return scope_counterfactual(st.con, sp, spec, scope=kw.pop("scope", row["scope"]),
                                    slice=inc.truth["slice"], t0=t0, end=end, grain=grain,
                                    schedule=sched, **kw)


def _truth(inc, cf):
    nc = pd.read_csv(inc.path / "no_change.csv")
    nc["ts"] = pd.to_datetime(nc["ts"], utc=True)
    s = cf.series.merge(nc, on="ts")
    s = s[s["ts"] >= cf.t0]
    true_total = float(s["observed_num"].sum() - s["conversions_no_change"].sum())
    rate = s["conversions_no_change"] / s["sessions"]
    coverage = float(((s["lo"] <= rate) & (rate <= s["hi"])).mean())
    return true_total, coverage


@pytest.mark.parametrize("fixture", ["scoped", "staged", "delayed"])
def test_total_effect_and_band_match_the_truth(request, fixture):
    inc = request.getfixturevalue(fixture)
    cf = _culprit_cf(inc)
    true_total, coverage = _truth(inc, cf)
    assert true_total < 0
    assert abs(cf.total - true_total) <= 0.10 * abs(true_total)
    assert cf.total_lo <= true_total <= cf.total_hi
    assert coverage >= 0.90
    # the answer's series: ISO 'Z' times, the band around the counterfactual
    rec = cf.to_dict()
    first = rec["series"][0]
    assert first["ts"].endswith("Z") and first["lo"] <= first["counterfactual"] <= first["hi"]
    assert rec["total"]["unit"] == "conversions" and rec["total"]["lo"] < rec["total"]["hi"]


def test_a_delayed_effect_starts_when_it_starts(delayed):
    cf = _culprit_cf(delayed)
    assert cf.lag == pd.Timedelta(hours=delayed.truth["details"]["delay_hours"])
    assert str(cf.onset.isoformat()).startswith(delayed.truth["onset"][:13])


def test_a_ramp_is_dosed(staged):
    cf = _culprit_cf(staged)
    assert cf.lag == pd.Timedelta(0)
    # the effect at full exposure, not the average over the 10% and 50% steps
    assert cf.effect_full == pytest.approx(staged.truth["effect"], abs=0.05)
    early = cf.series[(cf.series["ts"] >= cf.t0) & (cf.series["dose"] == 0.1)]
    full = cf.series[cf.series["dose"] == 1.0]
    gap = lambda s: (s["observed_num"] - s["counterfactual_num"]).sum() / s["counterfactual_num"].sum()  # noqa: E731
    assert abs(gap(early)) < abs(gap(full)) / 3


def test_a_harmless_scope_shows_no_effect(scoped):
    # the ios scope of chg-0446 (harmless, conftest), at the culprit's time: the slice
    # (web/firefox) is outside it, so the region is the scope, and no effect is found
    cf = _culprit_cf(scoped, scope={"platform": "ios"})
    assert cf.region == {"platform": "ios"}
    assert cf.total_lo <= 0 <= cf.total_hi


def test_region_narrows_the_scope_to_the_slice():
    assert region_of({"region": "EU"}, {"country": "FR"}) == {"region": "EU", "country": "FR"}
    assert region_of({"platform": ["ios", "android"]}, {"platform": "ios"}) == {"platform": "ios"}
    # a slice outside the scope leaves the scope
    assert region_of({"platform": "ios"}, {"platform": "web"}) == {"platform": "ios"}
    assert region_of({"platform": "ios"}, None) == {"platform": "ios"}


def test_a_global_change_has_no_counterfactual(scoped):
    with scoped.store() as st:
        sp = st.passport()
        cf = scope_counterfactual(st.con, sp, sp.manifest.metric("conversion_rate"), scope={},
                                  slice=None, t0=scoped.onset, end=scoped.end, grain="1h")
    assert cf is None
