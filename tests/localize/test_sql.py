"""Tests of workbench.localize._sql: screening and pooling in DuckDB before any leaf exists.

The path is forced with a small ``max_leaves``; the data are seeded unit-level rows
with high-cardinality dimensions and a known answer.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from workbench.localize import LocalizeConfig, localize
from workbench.localize import _sql

SCREENED = LocalizeConfig(max_leaves=1_000)


def _zipf(rng, card, n, s=1.1):
    w = 1.0 / np.arange(1, card + 1) ** s
    return rng.choice(card, size=n, p=w / w.sum())


def unit_rows(rng, n=200_000, *, kind="ratio", effect=None, change=-0.5):
    """Unit-level rows: half baseline, half observed; city rolls up into country.

    ``effect`` is a filter on the coded values (``{"country": 3, "os": 1}``) whose
    observed conversion rate (ratio) or volume (sum) is multiplied by ``1 + change``.
    """
    city = _zipf(rng, 3000, n)
    country_of_city = rng.integers(0, 25, 3000)
    cols = {"city": city, "country": country_of_city[city], "agent": _zipf(rng, 4000, n),
            "os": _zipf(rng, 5, n, 0.5), "plan": rng.integers(0, 3, n)}
    obs = rng.random(n) < 0.5
    hit = obs & (effect is not None)
    for d, v in (effect or {}).items():
        hit &= cols[d] == v
    frame = pd.DataFrame({d: pd.Categorical.from_codes(c, [f"{d}{i}" for i in range(c.max() + 1)])
                          for d, c in cols.items()})
    if kind == "ratio":
        p = np.where(hit, 0.1 * (1 + change), 0.1)
        conv = (rng.random(n) < p).astype(float)
        frame["base_num"] = np.where(obs, 0.0, conv)
        frame["base_den"] = np.where(obs, 0.0, 1.0)
        frame["obs_num"] = np.where(obs, conv, 0.0)
        frame["obs_den"] = np.where(obs, 1.0, 0.0)
    else:
        # Each unit is a count; in the effect the observed count changes.
        y = rng.poisson(np.where(hit, 5.0 * (1 + change), 5.0)).astype(float)
        frame["base_num"] = np.where(obs, 0.0, 5.0)
        frame["obs_num"] = np.where(obs, y, 0.0)
    return frame


DIMS = ["city", "country", "agent", "os", "plan"]
HIER = {"country": "city"}


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def test_conjunction_found_from_unit_rows_in_duckdb(rng, con):
    frame = unit_rows(rng, effect={"country": 3, "os": 1})
    rel = con.from_df(frame)
    loc = localize(rel, dimensions=DIMS, kind="ratio", hierarchies=HIER, config=SCREENED)
    assert [s.filter for s in loc.slices] == [{"country": "country3", "os": "os1"}]
    top = loc.slices[0]
    assert top.q_value < 0.01
    assert -0.6 < top.effect_size < -0.35
    # Cells, not leaves: the screen pooled almost everything.
    assert loc.n_leaves < 2_000
    # Every value of every dimension was tested (BH family), pooled or not.
    assert loc.n_tested >= sum(frame[d].nunique() for d in DIMS)


def test_screen_keeps_the_values_of_the_root_cause(rng, con):
    frame = unit_rows(rng, effect={"country": 3, "os": 1})
    rel = con.from_df(frame)
    values = _sql.screen_values(rel, DIMS, "ratio")
    res = _sql.screen(values, "ratio", LocalizeConfig())
    kept = {d: set(v.raw.take(k).to_pylist()) for d, v, k in zip(DIMS, values, res.kept)}
    assert "country3" in kept["country"] and "os1" in kept["os"]
    # A wide dimension the cause is spread over in proportion to volume keeps only a
    # few values (a large deviation alone does not keep a value); narrow dimensions
    # are kept whole while the cell budget allows.
    assert len(kept["agent"]) <= 6 and len(kept["city"]) <= 6
    full = dict(zip(DIMS, res.full))
    assert full["plan"] and full["os"] and full["country"] and not full["agent"]
    # Nothing kept is a value with no rows, and the budget holds.
    assert all(values[i].rows[k].min() > 0 for i, k in enumerate(res.kept) if len(k))
    assert res.n_values == sum(frame[d].nunique() for d in DIMS)


def test_needle_in_a_high_cardinality_dimension(rng, con):
    frame = unit_rows(rng, kind="sum", effect={"agent": 7}, change=-0.8)
    loc = localize(con.from_df(frame), dimensions=DIMS, kind="sum", hierarchies=HIER,
                   config=SCREENED)
    assert [s.filter for s in loc.slices] == [{"agent": "agent7"}]


def test_large_frame_goes_through_duckdb_and_agrees_with_the_exact_search(rng):
    frame = unit_rows(rng, n=80_000, effect={"country": 3, "os": 1}, change=-0.8)
    # Leaves (one row per combination) as a caller would pass them.
    leaves = frame.groupby(DIMS, observed=True, as_index=False).sum()
    exact = localize(leaves, dimensions=DIMS, kind="ratio", hierarchies=HIER)
    screened = localize(leaves, dimensions=DIMS, kind="ratio", hierarchies=HIER,
                        config=SCREENED)
    assert [s.filter for s in screened.slices] == [s.filter for s in exact.slices] \
        == [{"country": "country3", "os": "os1"}]
    # Totals are exact in both (pooling keeps every sum).
    assert screened.deviation == pytest.approx(exact.deviation, rel=1e-9)
    assert screened.slices[0].observed == pytest.approx(exact.slices[0].observed, rel=1e-9)
    assert screened.slices[0].explained_share == pytest.approx(
        exact.slices[0].explained_share, rel=1e-9)


def test_quiet_rows_give_no_slice(rng, con):
    loc = localize(con.from_df(unit_rows(rng)), dimensions=DIMS, kind="ratio",
                   hierarchies=HIER, config=SCREENED)
    assert loc.slices == ()


def test_coded_dimensions_are_reported_by_label(rng, con):
    frame = unit_rows(rng, effect={"country": 3, "os": 1})
    coded = frame.copy()
    for d in DIMS:
        coded[d] = frame[d].cat.codes.astype(np.int32)
    labels = {d: pd.Series(frame[d].cat.categories, index=range(len(frame[d].cat.categories)))
              for d in DIMS}
    loc = localize(con.from_df(coded), dimensions=DIMS, kind="ratio", hierarchies=HIER,
                   config=SCREENED, labels=labels)
    assert [s.filter for s in loc.slices] == [{"country": "country3", "os": "os1"}]


def test_cell_budget_drops_the_weakest_values_first():
    kept = [np.arange(5), np.arange(3), np.array([], dtype=int)]
    strength = [np.array([9.0, 8, 7, 6, 5]), np.array([4.0, 3.5, 10]), np.array([])]
    out = _sql._fit_cell_budget(kept, strength, 12)
    assert np.prod([len(k) + 1 for k in out if len(k)]) <= 12
    assert 2 in out[1] and 0 in out[0]          # the strongest of each survive


def test_store_window_rows_localize_like_the_leaves(tiny_passport):
    from workbench.passport import load_passport
    from workbench.store import Store, leaves
    from workbench.store.queries import window_rows

    with Store(tiny_passport.parent / "t.duckdb") as st:
        st.ingest(load_passport(tiny_passport))
        sp = st.passport()
        spec = sp.manifest.metric("conversion_rate")
        obs = (pd.Timestamp("2026-11-03", tz="UTC"), pd.Timestamp("2026-11-04", tz="UTC"))
        base = [(pd.Timestamp("2026-11-01", tz="UTC"), pd.Timestamp("2026-11-02", tz="UTC")),
                (pd.Timestamp("2026-11-02", tz="UTC"), pd.Timestamp("2026-11-03", tz="UTC"))]
        lv = leaves(st.con, sp, spec, obs=obs, base=base).frame
        src = window_rows(st.con, sp, spec, obs=obs, base=base)
        dims = list(sp.manifest.all_dimensions)
        # Same sums per leaf as the leaves query.
        agg = src.relation.query(
            "r", "SELECT " + ", ".join(dims) + ", SUM(obs_num) AS o, SUM(base_num) AS b, "
            "SUM(obs_den) AS od, SUM(base_den) AS bd FROM r GROUP BY ALL").df()
        for d in dims:
            agg[d] = agg[d].map(src.labels[d])
        m = lv.astype({d: str for d in dims}).merge(agg, on=dims)
        assert len(m) == len(lv)
        np.testing.assert_allclose(m["obs_num"], m["o"])
        np.testing.assert_allclose(m["base_num"], m["b"])
        np.testing.assert_allclose(m["base_den"], m["bd"])
        hier = dict(sp.manifest.hierarchies)
        a = localize(lv, dimensions=dims, kind="ratio", hierarchies=hier)
        b = localize(src.relation, dimensions=dims, kind="ratio", hierarchies=hier,
                     labels=src.labels)
        assert [s.filter for s in a.slices] == [s.filter for s in b.slices]
        assert a.deviation == pytest.approx(b.deviation, rel=1e-9)
        assert a.n_leaves == b.n_leaves


def test_conjunction_with_a_wide_dimension_survives_the_screen(rng, con):
    # agent has 4,000 values: the screen must keep agent2 for {agent2, plan1} to be found.
    frame = unit_rows(rng, effect={"agent": 2, "plan": 1}, change=-0.8)
    rel = con.from_df(frame)
    values = _sql.screen_values(rel, DIMS, "ratio")
    res = _sql.screen(values, "ratio", LocalizeConfig(), {0: 1})
    agent = DIMS.index("agent")
    assert "agent2" in values[agent].raw.take(res.kept[agent]).to_pylist()
    assert not res.full[agent]
    loc = localize(rel, dimensions=DIMS, kind="ratio", hierarchies=HIER, config=SCREENED)
    assert [s.filter for s in loc.slices] == [{"agent": "agent2", "plan": "plan1"}]


def test_labels_apply_to_a_coded_frame_searched_leaf_by_leaf(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 6, "device": 3}, kind="sum", size=400.0,
                         effects=[({"country": "co2"}, -0.5)])
    coded = leaves.copy()
    coded["country"] = coded["country"].str[2:].astype(int)
    names = {i: f"co{i}" for i in range(6)}
    loc = localize(coded, dimensions=["country", "device"], kind="sum",
                   labels={"country": names})
    assert [s.filter for s in loc.slices] == [{"country": "co2"}]


@pytest.mark.parametrize("dims", [DIMS, ["agent"]], ids=["all", "one-wide-dimension"])
def test_uniform_shift_is_global_after_the_screen(rng, con, dims):
    # Every observed unit converts less: no value stands out, the answer is {} (all).
    frame = unit_rows(rng, effect={}, change=-0.3)
    loc = localize(con.from_df(frame), dimensions=dims, kind="ratio",
                   hierarchies=HIER if len(dims) > 1 else None, config=SCREENED)
    assert [s.filter for s in loc.slices] == [{}]
    assert loc.slices[0].relative_change == pytest.approx(-0.3, abs=0.05)
