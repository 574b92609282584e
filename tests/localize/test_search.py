"""Tests of workbench.localize.search (localize)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.errors import UsageError
from workbench.localize import Localization, LocalizeConfig, SliceFinding, localize

CARDS = {"country": 8, "device": 4, "browser": 5, "plan": 3}
DIMS = list(CARDS)


def filters(loc: Localization) -> list[dict]:
    return [s.filter for s in loc.slices]


@pytest.mark.parametrize("kind", ["sum", "ratio"])
@pytest.mark.parametrize("flt", [
    {"country": "co3"},
    {"country": "co3", "device": "de1"},
    {"country": "co3", "device": "de1", "browser": "br2"},
], ids=["depth1", "depth2", "depth3"])
def test_single_root_cause_found_exactly(rng, make_leaves, kind, flt):
    size = 400.0 if kind == "sum" else 3000.0
    leaves = make_leaves(rng, CARDS, kind=kind, size=size, effects=[(flt, -0.5)])
    loc = localize(leaves, dimensions=DIMS, kind=kind)
    assert filters(loc) == [flt]
    top = loc.slices[0]
    assert top.q_value < 0.01 and top.p_value < 1e-6
    assert top.relative_change < -0.3
    assert 0.8 < top.explained_share < 1.2
    assert top.confidence > 0.99


def test_two_simultaneous_root_causes(rng, make_leaves):
    effects = [({"country": "co1"}, -0.4), ({"device": "de2", "browser": "br4"}, 0.6)]
    leaves = make_leaves(rng, CARDS, size=400.0, effects=effects)
    loc = localize(leaves, dimensions=DIMS, kind="sum")
    assert sorted(map(str, filters(loc))) == sorted(map(str, [e[0] for e in effects]))
    # The two move in opposite directions; both are reported with the right sign.
    by = {tuple(sorted(s.filter)): s for s in loc.slices}
    assert by[("country",)].relative_change < 0 < by[("browser", "device")].relative_change


def test_hierarchy_prefers_the_region_to_its_countries(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 12, "device": 4, "plan": 3}, size=400.0)
    region = {f"co{i}": f"r{i // 4}" for i in range(12)}
    leaves["region"] = leaves["country"].map(region)
    bad = leaves["region"] == "r1"
    leaves.loc[bad, "obs_num"] = rng.poisson(leaves.loc[bad, "base_num"] * 0.6).astype(float)
    loc = localize(leaves, dimensions=["country", "device", "plan"], kind="sum",
                   hierarchies={"region": "country"})
    assert filters(loc) == [{"region": "r1"}]


def test_hierarchy_never_returns_redundant_slices(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 12, "device": 4}, size=400.0,
                         effects=[({"country": "co5"}, -0.6)])
    leaves["region"] = leaves["country"].map(lambda c: f"r{int(c[2:]) // 4}")
    loc = localize(leaves, dimensions=["country", "device"], kind="sum",
                   hierarchies={"region": "country"})
    assert filters(loc) == [{"country": "co5"}]
    assert not any({"region", "country"} <= set(c.split("=")[0] for c in s.split("&"))
                   for s in loc.candidates["slice"])


def test_hierarchy_that_is_not_a_rollup_is_rejected(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 4, "device": 2}, size=50.0)
    leaves["region"] = np.where(leaves["device"] == "de0", "r0", "r1")
    with pytest.raises(UsageError, match="not a roll-up"):
        localize(leaves, dimensions=["country"], kind="sum", hierarchies={"region": "country"})


def test_high_cardinality_dimension_with_one_bad_value(rng):
    n = 2000
    leaves = pd.DataFrame({
        "user_agent": np.repeat([f"ua{i}" for i in range(n)], 3),
        "device": np.tile(["ios", "android", "web"], n),
    })
    leaves["base_num"] = 50.0 * rng.lognormal(0, 0.5, len(leaves))
    factor = np.where(leaves["user_agent"] == "ua1234", 0.2, 1.0)
    leaves["obs_num"] = rng.poisson(leaves["base_num"] * factor).astype(float)
    loc = localize(leaves, dimensions=["user_agent", "device"], kind="sum",
                   config=LocalizeConfig(max_values=50))
    assert filters(loc) == [{"user_agent": "ua1234"}]
    # Pooled values are still tested (they count in the FDR family).
    assert loc.n_tested >= n + 3


def test_quiet_cube_returns_no_significant_slice(rng, make_leaves):
    for kind in ("sum", "ratio"):
        leaves = make_leaves(rng, CARDS, kind=kind, size=300.0)
        loc = localize(leaves, dimensions=DIMS, kind=kind)
        assert loc.slices == ()
        assert loc.explained_share == 0.0 or not np.isfinite(loc.explained_share)
        assert loc.p_value > 1e-4


def test_uniform_shift_everywhere_is_global(rng, make_leaves):
    leaves = make_leaves(rng, CARDS, size=300.0)
    leaves["obs_num"] = rng.poisson(leaves["base_num"] * 0.7).astype(float)
    loc = localize(leaves, dimensions=DIMS, kind="sum")
    assert filters(loc) == [{}]


def test_ratio_mix_within_a_slice_is_not_a_rate_change(rng, make_leaves):
    # Traffic moves from a high-rate to a low-rate device; no leaf's rate changes.
    leaves = make_leaves(rng, {"country": 6, "device": 2}, kind="ratio", size=4000.0)
    ios = leaves["device"] == "de0"
    leaves.loc[ios, "obs_den"] *= 3
    leaves.loc[ios, "obs_num"] = rng.binomial(
        leaves.loc[ios, "obs_den"].astype(int),
        (leaves.loc[ios, "base_num"] / leaves.loc[ios, "base_den"]).clip(0, 1)).astype(float)
    loc = localize(leaves, dimensions=["country", "device"], kind="ratio")
    assert loc.slices == ()
    assert abs(loc.mix_deviation) > abs(loc.rate_deviation) or abs(loc.deviation) < 1e-9


def test_nulls_and_categoricals_are_values(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 5, "device": 3}, size=400.0)
    leaves["country"] = leaves["country"].where(leaves["country"] != "co2", None)
    bad = leaves["country"].isna()
    leaves.loc[bad, "obs_num"] = rng.poisson(leaves.loc[bad, "base_num"] * 0.5).astype(float)
    leaves["device"] = leaves["device"].astype("category")
    loc = localize(leaves, dimensions=["country", "device"], kind="sum")
    assert filters(loc) == [{"country": "(null)"}]


def test_to_dict_is_json_serializable_and_frames_have_rows(rng, make_leaves):
    leaves = make_leaves(rng, CARDS, kind="ratio", size=3000.0,
                         effects=[({"device": "de1"}, -0.5)])
    loc = localize(leaves, dimensions=DIMS, kind="ratio")
    d = json.loads(json.dumps(loc.to_dict(), allow_nan=False))
    assert d["slices"][0]["filter"] == {"device": "de1"}
    assert set(d["slices"][0]) >= {"explained_share", "baseline", "observed", "relative_change",
                                    "effect_size", "p_value", "q_value", "confidence", "n_leaves",
                                    "den_share"}
    frame = loc.to_frame()
    assert list(frame["slice"]) == ["device=de1"]
    assert isinstance(loc.slices[0], SliceFinding)
    assert len(loc.candidates) > 0


def test_bad_input_says_what_is_wrong(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 3}, size=10.0)
    with pytest.raises(UsageError, match="no column 'nope'"):
        localize(leaves, dimensions=["nope"], kind="sum")
    with pytest.raises(UsageError, match="base_den"):
        localize(leaves, dimensions=["country"], kind="ratio")
    with pytest.raises(UsageError, match="kind"):
        localize(leaves, dimensions=["country"], kind="mean")
    with pytest.raises(UsageError, match="alpha"):
        LocalizeConfig(alpha=2.0)
