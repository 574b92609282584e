"""Effects against the right comparison, and blame that needs an effect of its own (issue 14)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from workbench.events import did_effect, rank_changes, scope_mask
from workbench.events.rank import DoseResponse
from workbench.events.siblings import (OwnEffectRule, apply_own_effect_rule, diverging_parent,
                                       nesting_slice, sibling_effect)

from .test_rank import _changes

GRAIN = pd.Timedelta("1h")
ONSET = pd.Timestamp("2026-11-18T14:00Z")
PLATFORMS = ("ios", "android", "web")
COUNTRIES = ("DE", "FR", "US", "BR")


def _world(rng, hit: dict, drop: float, start=ONSET):
    """Leaf-level hourly counts (platform x country); ``hit`` leaves convert ``drop`` less
    from ``start`` on. Returns ``(leaves, series)`` as the ranking takes them."""
    ts = pd.date_range(pd.Timestamp("2026-11-09T00:00Z"), ONSET + pd.Timedelta("30h"), freq="1h")
    leaves = pd.DataFrame([(p, c) for p in PLATFORMS for c in COUNTRIES],
                          columns=["platform", "country"])
    daily = 1 + 0.3 * np.sin(2 * np.pi * ts.hour / 24)
    den = np.round(np.outer(daily, np.full(len(leaves), 2500.0)))
    rate = np.full(den.shape, 0.04)
    hit_m = scope_mask(leaves, hit)
    rate[np.ix_(ts >= start, hit_m)] *= 1 - drop
    num = rng.binomial(den.astype(int), rate).astype(float)

    def series(filt: dict, negate: bool) -> pd.DataFrame:
        m = scope_mask(leaves, filt)
        m = ~m if negate else m
        return pd.DataFrame({"ts": ts, "num": num[:, m].sum(axis=1),
                             "den": den[:, m].sum(axis=1)})

    obs = ts >= ONSET
    lv = leaves.assign(base_num=num[~obs].sum(axis=0) * obs.sum() / (~obs).sum(),
                       base_den=den[~obs].sum(axis=0) * obs.sum() / (~obs).sum(),
                       obs_num=num[obs].sum(axis=0), obs_den=den[obs].sum(axis=0))
    return lv, series


def _rank(rng, hit, decoy_scope, decoy_ts, slices):
    lv, series = _world(rng, hit, 0.35)
    ch = _changes([{"id": "decoy", "ts": decoy_ts, "scope": decoy_scope}])
    return rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("29h"), grain=GRAIN,
                        kind="ratio", direction_sign=-1.0, leaves=lv, top_slices=slices,
                        series=series), lv, series


def test_a_decoy_nested_in_an_externally_hit_slice_is_explained_away(rng):
    # all of DE drops at the onset; a flag for DE iOS landed two hours before
    scope = {"country": "DE", "platform": "ios"}
    res, lv, series = _rank(rng, {"country": "DE"}, scope, "2026-11-18T12:00Z",
                            [{"filter": {"country": "DE"}, "explained_share": 1.0}])
    # against the rest of the world, the decoy inherits DE's drop ...
    plain = did_effect(series(scope, False), series(scope, True), ONSET - 2 * GRAIN, "ratio")
    assert plain.t_stat < -8
    # ... against its siblings (DE android and web), it has no effect of its own
    decoy = res.causes[0]
    assert decoy.features["siblings"]["slice"] == {"country": "DE"}
    assert decoy.features["siblings"]["ci_low"] < 0 < decoy.features["siblings"]["ci_high"]
    assert decoy.features["own_effect"] is False
    assert decoy.confidence < 0.3 and res.external > 0.7
    assert any("the slice is the story" in e for e in decoy.evidence)
    assert decoy.to_dict()["own_effect"] is False


def test_a_real_culprit_nested_in_a_slice_keeps_its_blame(rng):
    scope = {"country": "DE", "platform": "ios"}
    res, _, _ = _rank(rng, scope, scope, "2026-11-18T14:00Z",
                      [{"filter": {"country": "DE"}, "explained_share": 1.0}])
    top = res.causes[0]
    assert top.features["siblings"]["t_stat"] < -8  # exposed fell, siblings did not
    assert top.features["own_effect"] is True and top.confidence > 0.9


def test_a_change_without_an_effect_of_its_own_stays_below_its_prior(rng):
    # the localization points at iOS, but iOS converts as before against the rest
    lv, _ = _world(rng, {"platform": "ios"}, 0.35)
    _, flat = _world(rng, {"platform": "ios"}, 0.0)
    ch = _changes([{"id": "ios", "ts": "2026-11-18T14:00Z", "scope": {"platform": "ios"}}])
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("29h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv,
                       top_slices=[{"filter": {"platform": "ios"}, "explained_share": 1.0}],
                       series=flat)
    c = res.causes[0]
    assert c.effect.ci_low < 0 < c.effect.ci_high
    assert c.features["own_effect"] is False
    assert c.confidence < 0.3  # at most e^-1 / (1 + e^-1) against "outside the log"
    assert any("cannot rise above its prior" in e for e in c.evidence)


def test_a_small_share_needs_the_rest_explained():
    rule = OwnEffectRule()
    dev = np.array([-10.0, -80.0, -10.0])
    masks = [np.array([True, False, False]), np.array([False, True, False])]
    ch = [SimpleNamespace(scope={"platform": "ios"}), SimpleNamespace(scope={"platform": "web"})]

    def rows(f_effect_b):
        return [(ch[0], 6.0, 0.0, 0.1, 0.05, None, (), {"effect": 2.0, "prior": 0.0}),
                (ch[1], 6.0, 0.0, 0.8, 0.3, None, (), {"effect": f_effect_b, "prior": 0.0})]

    # the web change explains the rest: the small iOS share keeps its score
    r = rows(2.0)
    apply_own_effect_rule(r, masks, dev, dev.sum(), rule, external_score=3.5)
    assert r[0][1] == 6.0 and r[0][7]["own_effect"] is True
    # without it (no effect of its own), 10% of the divergence cannot be blamed
    r = rows(0.1)
    apply_own_effect_rule(r, masks, dev, dev.sum(), rule, external_score=3.5)
    assert r[0][1] == pytest.approx(2.5) and r[0][7]["own_effect"] is False
    assert r[1][1] == pytest.approx(2.5)
    # a change a day early whose comparison holds the shift explains nothing credible
    old = (SimpleNamespace(scope={"country": "DE"}), -5.0, 30.0, 1.0, 0.9, None, (),
           {"effect": 1.0, "prior": 0.0})
    r = rows(0.1)[:1] + [old]
    apply_own_effect_rule(r, [masks[0], np.ones(3, dtype=bool)], dev, dev.sum(), rule,
                          external_score=3.5)
    assert r[0][1] == pytest.approx(2.5) and r[0][7]["own_effect"] is False


def test_nesting_slice_requires_siblings():
    lv = pd.DataFrame([(p, c) for p in PLATFORMS for c in COUNTRIES],
                      columns=["platform", "country"])
    den = np.ones(len(lv))
    m = scope_mask(lv, {"country": "DE", "platform": "ios"})
    sl = [{"filter": {"country": "DE"}}, {"filter": {"country": "DE", "platform": "ios"}}]
    assert nesting_slice(lv, m, den, sl, None) == {"country": "DE"}
    assert nesting_slice(lv, m, den, sl[1:], None) is None  # the scope is the slice
    assert nesting_slice(lv, m, den, [{"filter": {"country": "FR"}}], None) is None
    assert nesting_slice(lv, m, den, [], {"platform": "ios"}) == {"platform": "ios"}


def test_a_parent_of_the_scope_that_holds_the_divergence_is_the_nesting_slice():
    # localization named a narrower corner; the scope's parent country=DE drops as a whole
    lv = pd.DataFrame([(p, c) for p in PLATFORMS for c in COUNTRIES],
                      columns=["platform", "country"])
    den = np.ones(len(lv))
    dev = np.where(lv["country"] == "DE", -10.0, 0.0)
    rule = OwnEffectRule()
    scope = {"country": "DE", "platform": "ios"}
    assert diverging_parent(lv, scope, dev, den, rule) == {"country": "DE"}
    # a uniform drop concentrates nowhere; a single-dimension scope has no parent here
    assert diverging_parent(lv, scope, np.full(len(lv), -1.0), den, rule) is None
    assert diverging_parent(lv, {"country": "DE"}, dev, den, rule) is None
    # a parent whose siblings carry too little of its traffic cannot clear anything
    thin = np.where((lv["country"] == "DE") & (lv["platform"] != "ios"), 0.01, 1.0)
    assert diverging_parent(lv, scope, dev, thin, rule) is None


def test_sibling_effect_is_a_triple_difference(rng):
    _, series = _world(rng, {"country": "DE"}, 0.35)
    lo, hi = ONSET - pd.Timedelta("7D"), ONSET + pd.Timedelta("30h")
    sib = sibling_effect(series, {"platform": "ios"}, {"country": "DE"}, ONSET, "ratio", lo, hi)
    assert sib.method == "ddd-siblings-log-hac" and abs(sib.t_stat) < 2.5


def test_dosed_rollout_is_dated_from_the_first_dose_that_diverges():
    steps = ({"change_id": "a", "ts": "2026-11-18T10:20:00+00:00", "rollout": 5.0,
              "effect": -0.004, "n": 12, "t": -0.6},
             {"change_id": "b", "ts": "2026-11-18T22:00:00+00:00", "rollout": 25.0,
              "effect": -0.06, "n": 12, "t": -3.1},
             {"change_id": "c", "ts": "2026-11-19T10:00:00+00:00", "rollout": 100.0,
              "effect": -0.25, "n": 20, "t": -12.0})
    dose = DoseResponse(target="f", steps=steps, slope=-0.25, r=0.99,
                        first_step=pd.Timestamp("2026-11-18T10:00Z"), consistent=True)
    t, cid = dose.first_diverging(-1.0, GRAIN)
    assert cid == "b" and t == pd.Timestamp("2026-11-18T22:00Z")
    assert dose.first_diverging(+1.0, GRAIN) is None  # no step rose


def test_a_ramps_first_dose_has_the_effect_its_later_doses_show(rng):
    """10% -> 50% -> 100% over a day and a half: the 10% step's own comparison is weak,
    the 50% and 100% steps land after the candidate window; the ramp's effect is its own."""
    from workbench.events.rank import ramp_effects

    from .test_rank import _series

    scope = {"platform": "android"}
    t1, t2, t3 = ONSET, ONSET + pd.Timedelta("12h"), ONSET + pd.Timedelta("36h")
    fn = _series(scope, 0.6, rng, hours=24 * 12, doses=[(t1, 0.1), (t2, 0.5), (t3, 1.0)])
    ch = _changes([{"id": f"s{i}", "ts": t, "scope": scope, "kind": "flag", "target": "f",
                    "rollout": r} for i, (t, r) in enumerate([(t1, 10), (t2, 50), (t3, 100)])])
    first = next(ch.itertuples(index=False))
    rows = [(first, 6.0, 0.0, 1.0, 0.3, None, (), {"effect": 0.2, "prior": 0.0})]
    kw = dict(kind="ratio", grain=GRAIN, cfg=SimpleNamespace(own_rule=OwnEffectRule()),
              end=ONSET + pd.Timedelta("60h"))
    ramp_effects(rows, ch, fn, direction_sign=-1.0, **kw)
    assert rows[0][7]["ramp_effect"] is True
    # a ramp whose doses do nothing stays without an effect of its own
    flat = [(first, 6.0, 0.0, 1.0, 0.3, None, (), {"effect": 0.2, "prior": 0.0})]
    ramp_effects(flat, ch, _series(scope, 0.0, rng, hours=24 * 12), direction_sign=-1.0, **kw)
    assert "ramp_effect" not in flat[0][7]


def _rank_with_globals(rng, hit: dict, drop: float):
    lv, series = _world(rng, hit, drop)
    rows = [{"id": "flag-ios", "ts": "2026-11-18T14:00Z", "scope": {"platform": "ios"}}]
    rows += [{"id": f"global-{i}", "ts": f"2026-11-18T{10 + i:02d}:00Z", "scope": {}}
             for i in range(4)]
    return rank_changes(_changes(rows), onset=ONSET, end=ONSET + pd.Timedelta("29h"),
                        grain=GRAIN, kind="ratio", direction_sign=-1.0, leaves=lv,
                        top_slices=[], series=series)


def test_global_changes_lose_what_a_scoped_change_with_an_own_effect_shows(rng):
    # iOS converts 5% less from the onset; four deploys to all traffic landed around it.
    # The iOS flag's own comparison shows android and web did not move: a change to all
    # traffic does not explain that, so each global change is lowered by that evidence.
    res = _rank_with_globals(rng, {"platform": "ios"}, 0.05)
    by = {c.change_id: c for c in res.causes}
    assert res.causes[0].change_id == "flag-ios"
    assert by["flag-ios"].features["own_effect"] is True
    for i in range(4):
        g = by[f"global-{i}"]
        assert g.features["uniformity_penalty"] > 1.0
        assert any("did not diverge alike" in e for e in g.evidence)
        assert g.confidence < by["flag-ios"].confidence / 5
    assert by["flag-ios"].confidence > 0.5


def test_global_changes_keep_their_score_when_the_divergence_is_uniform(rng):
    # everything drops alike: the iOS flag has no effect of its own, nothing is lowered
    res = _rank_with_globals(rng, {}, 0.05)
    by = {c.change_id: c for c in res.causes}
    assert by["flag-ios"].features["own_effect"] is False
    assert all("uniformity_penalty" not in by[f"global-{i}"].features for i in range(4))


def test_two_concurrent_culprits_are_not_each_others_siblings(rng):
    # iOS and Android in DE both drop from the onset: two flags, one for each, landed
    # together. In the slice DE, each flag's siblings are mostly the other flag's units,
    # which fell too: they are no control (no comparison within DE is left), so neither
    # flag is explained away by the other and both keep an effect of their own.
    lv, series = _world(rng, {"country": "DE", "platform": ["ios", "android"]}, 0.35)
    ch = _changes([{"id": "flag-ios", "ts": "2026-11-18T14:00Z",
                    "scope": {"country": "DE", "platform": "ios"}},
                   {"id": "flag-android", "ts": "2026-11-18T14:00Z",
                    "scope": {"country": "DE", "platform": "android"}}])
    slices = [{"filter": {"country": "DE", "platform": ["ios", "android"]},
               "explained_share": 1.0}]
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("29h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv, top_slices=slices,
                       series=series)
    by = {c.change_id: c for c in res.causes}
    for cid in ("flag-ios", "flag-android"):
        assert by[cid].features.get("siblings") is None
        assert by[cid].features["own_effect"] is True
    assert by["flag-ios"].confidence + by["flag-android"].confidence > 0.7
    # the same world with the android flag landing a day earlier: it is no concurrent
    # treatment, and the iOS flag is compared with its siblings again
    ch.loc[ch["id"] == "flag-android", "ts"] = pd.Timestamp("2026-11-17T14:00Z")
    res = rank_changes(ch, onset=ONSET, end=ONSET + pd.Timedelta("29h"), grain=GRAIN,
                       kind="ratio", direction_sign=-1.0, leaves=lv, top_slices=slices,
                       series=series)
    assert {c.change_id: c for c in res.causes}["flag-ios"].features.get("siblings") is not None


def test_a_diverging_parent_smaller_than_the_localized_slice_is_the_comparison(rng):
    # all of DE drops; localization named iOS (wider than DE here: 4 leaves to 3), which
    # holds the decoy's scope too. Against iOS outside DE the decoy inherits DE's drop;
    # against DE outside iOS, the smallest diverging slice holding it, it has none
    scope = {"country": "DE", "platform": "ios"}
    res, _, _ = _rank(rng, {"country": "DE"}, scope, "2026-11-18T12:00Z",
                      [{"filter": {"platform": "ios"}, "explained_share": 0.4}])
    decoy = res.causes[0]
    assert decoy.features["siblings"]["slice"] == {"country": "DE"}
    assert decoy.features["siblings"]["ci_low"] < 0 < decoy.features["siblings"]["ci_high"]
    assert decoy.features["own_effect"] is False
    assert decoy.confidence < 0.3


def test_a_real_culprit_keeps_its_blame_against_its_diverging_parent(rng):
    # the scope itself fell; its parent DE concentrates the drop too, and the scope's
    # siblings in DE did not fall: the comparison within DE keeps the effect
    scope = {"country": "DE", "platform": "ios"}
    res, _, _ = _rank(rng, scope, scope, "2026-11-18T14:00Z",
                      [{"filter": {"platform": "ios"}, "explained_share": 1.0}])
    top = res.causes[0]
    assert top.features["siblings"]["slice"] == {"country": "DE"}
    assert top.features["own_effect"] is True and top.confidence > 0.9
