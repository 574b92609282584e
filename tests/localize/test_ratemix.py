"""Tests of workbench.localize.ratemix (decompose_rate_mix)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.errors import UsageError
from workbench.localize import RateMixResult, decompose_rate_mix


def _mix_shift(rng, make_leaves):
    """Rates constant per leaf; the denominator moves towards the low-rate device."""
    leaves = make_leaves(rng, {"country": 6, "device": 3}, kind="ratio", size=5000.0)
    rate = {"de0": 0.10, "de1": 0.03, "de2": 0.05}
    p = leaves["device"].map(rate).to_numpy()
    leaves["base_den"] = rng.poisson(50000, len(leaves)).astype(float)
    leaves["obs_den"] = leaves["base_den"] * np.where(leaves["device"] == "de1", 3.0, 1.0)
    leaves["base_num"] = rng.binomial(leaves["base_den"].astype(int), p).astype(float)
    leaves["obs_num"] = rng.binomial(leaves["obs_den"].astype(int), p).astype(float)
    return leaves


def test_mix_shift_with_constant_rates(rng, make_leaves):
    # The rate test is calibrated (about 5% of pure mix shifts look like a rate change
    # by chance), so check the verdict over ten seeded draws, not one.
    verdicts = []
    for _ in range(10):
        rm = decompose_rate_mix(_mix_shift(rng, make_leaves), dimensions=["country", "device"])
        assert isinstance(rm, RateMixResult)
        assert rm.granularity == ("device",)
        assert rm.total_change < 0
        assert abs(rm.rate_effect) < 0.2 * abs(rm.total_change)
        assert rm.rate_effect + rm.mix_effect == pytest.approx(rm.total_change, abs=1e-12)
        verdicts.append(rm.verdict_hint)
    assert verdicts.count("mix_shift") >= 8
    assert rm.mix_share > 0.8


def test_rate_drop_is_rate(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 6, "device": 3}, kind="ratio", size=4000.0,
                         effects=[({"country": "co2"}, -0.5)])
    rm = decompose_rate_mix(leaves, dimensions=["country", "device"])
    assert rm.verdict_hint == "rate"
    assert rm.rate_effect < 0 and rm.rate_p_value < 1e-6
    assert abs(rm.mix_share) < 0.3
    top = rm.per_slice.iloc[0]
    assert top["rate_contribution"] < 0


def test_explicit_granularity_and_exact_identity(rng, make_leaves):
    leaves = _mix_shift(rng, make_leaves)
    rm = decompose_rate_mix(leaves, dimensions=["country", "device"], granularity=["country"])
    assert rm.granularity == ("country",)
    # By country the shift between devices inside each country is a rate change.
    assert rm.verdict_hint == "rate"
    assert rm.rate_effect + rm.mix_effect == pytest.approx(rm.total_change, abs=1e-12)
    assert rm.per_slice[["rate_contribution", "mix_contribution"]].to_numpy().sum() == \
        pytest.approx(rm.total_change, abs=1e-12)


def test_slices_present_in_one_period_only(rng):
    leaves = pd.DataFrame({"device": ["a", "b", "new"], "base_num": [10.0, 20.0, 0.0],
                           "base_den": [100.0, 100.0, 0.0], "obs_num": [10.0, 20.0, 30.0],
                           "obs_den": [100.0, 100.0, 100.0]})
    rm = decompose_rate_mix(leaves, dimensions=["device"])
    assert rm.rate_effect == pytest.approx(0.0)
    assert rm.mix_effect == pytest.approx(rm.total_change)


def test_to_dict_is_json_serializable(rng, make_leaves):
    rm = decompose_rate_mix(_mix_shift(rng, make_leaves), dimensions=["country", "device"])
    d = json.loads(json.dumps(rm.to_dict(), allow_nan=False))
    assert d["verdict_hint"] in ("mix_shift", "rate")
    assert d["slices"] and set(d["slices"][0]["filter"]) == {"device"}


def test_needs_a_ratio(rng, make_leaves):
    leaves = make_leaves(rng, {"country": 3}, size=10.0)
    with pytest.raises(UsageError):
        decompose_rate_mix(leaves, dimensions=["country"])
    ratio = make_leaves(rng, {"country": 3}, kind="ratio", size=10.0)
    with pytest.raises(UsageError, match="granularity"):
        decompose_rate_mix(ratio, dimensions=["country"], granularity=["device"])
