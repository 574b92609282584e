"""Localization at any depth: the search decides how deep to go, and stays precise there."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from workbench.errors import UsageError
from workbench.localize import LocalizeConfig, localize

CARDS = {"country": 6, "device": 4, "browser": 4, "plan": 3, "os": 3}
DIMS = list(CARDS)
DEEP4 = {"country": "co2", "device": "de1", "browser": "br3", "plan": "pl0"}
DEEP5 = {**DEEP4, "os": "os1"}


def filters(loc) -> list[dict]:
    return [s.filter for s in loc.slices]


@pytest.mark.parametrize("flt", [DEEP4, DEEP5], ids=["layer4", "layer5"])
def test_a_cause_four_or_five_attributes_deep_is_found_without_a_depth(rng, make_leaves, flt):
    leaves = make_leaves(rng, CARDS, size=400.0, effects=[(flt, -0.6)])
    loc = localize(leaves, dimensions=DIMS, kind="sum")
    assert filters(loc) == [flt]
    assert loc.slices[0].q_value < 1e-6
    # A cap of three attributes cannot name it: the former default answered otherwise.
    capped = localize(leaves, dimensions=DIMS, kind="sum", max_depth=3)
    assert filters(capped) != [flt]
    assert all(len(f) <= 3 for f in filters(capped))


def test_several_causes_at_different_depths_one_element_each(rng, make_leaves):
    effects = [(DEEP4, 0.8), ({"country": "co4", "device": "de0", "os": "os2"}, -0.6),
               ({"browser": "br1"}, -0.3)]
    leaves = make_leaves(rng, CARDS, size=400.0, effects=effects)
    loc = localize(leaves, dimensions=DIMS, kind="sum")
    # Exactly the three causes: no ancestor, no cloud of their children beside them.
    assert sorted(map(str, filters(loc))) == sorted(map(str, [e[0] for e in effects]))


def test_searching_deeper_does_not_take_power_from_shallow_slices(rng, make_leaves):
    leaves = make_leaves(rng, CARDS, size=400.0, effects=[({"device": "de2"}, -0.05)])
    full = localize(leaves, dimensions=DIMS, kind="sum")
    shallow = localize(leaves, dimensions=DIMS, kind="sum", max_depth=1)
    assert filters(full) == filters(shallow) == [{"device": "de2"}]
    # Each layer holds an equal share of the FDR family (weighted BH): the q-value of a
    # layer-1 slice grows with the number of layers (5), not with the thousands of
    # deeper slices tested beside it.
    assert full.n_tested > 20 * shallow.n_tested
    assert full.slices[0].q_value <= 5 * shallow.slices[0].q_value * 1.0001


def test_max_depth_is_a_cap(rng, make_leaves):
    leaves = make_leaves(rng, CARDS, size=400.0, effects=[(DEEP4, -0.6)])
    loc = localize(leaves, dimensions=DIMS, kind="sum", max_depth=2)
    assert all(len(f) <= 2 for f in filters(loc))
    with pytest.raises(UsageError, match="max_depth"):
        localize(leaves, dimensions=DIMS, kind="sum", max_depth=0)
    with pytest.raises(UsageError, match="extra_alpha"):
        LocalizeConfig(extra_alpha=0.0)


def test_everything_is_no_answer_when_only_part_moved(rng):
    # Three of six countries drop by 10 %, below the leaves' own 10 % wobble times 1.5:
    # no slice is a cause on its own, but the empty filter must not be the answer
    # either (half the population stood still); the search names what it could not
    # separate.
    cards = {"country": 6, "device": 4, "browser": 4, "plan": 3}
    vals = {d: [f"{d[:2]}{i}" for i in range(n)] for d, n in cards.items()}
    leaves = pd.DataFrame(list(itertools.product(*vals.values())), columns=list(vals))
    leaves["base_num"] = 1000 * rng.lognormal(0, 0.5, len(leaves))
    factor = np.where(leaves["country"].isin(["co0", "co1", "co2"]), 0.9, 1.0)
    leaves["obs_num"] = leaves["base_num"] * factor * (1 + 0.1 * rng.standard_normal(len(leaves)))
    loc = localize(leaves, dimensions=list(cards), kind="sum")
    assert {} not in filters(loc)
    assert loc.p_value < 1e-6
    named = [f for f in loc.unseparated if set(f) == {"country"}]
    assert {f["country"] for f in named} <= {"co0", "co1", "co2"} and len(named) >= 2
    assert loc.to_dict()["unseparated"] == [{str(k): str(v) for k, v in f.items()}
                                           for f in loc.unseparated]


def test_everything_is_the_answer_when_everything_moved(rng, make_leaves):
    leaves = make_leaves(rng, CARDS, size=300.0)
    leaves["obs_num"] = rng.poisson(leaves["base_num"] * 0.7).astype(float)
    loc = localize(leaves, dimensions=DIMS, kind="sum")
    assert filters(loc) == [{}] and loc.unseparated == ()
