"""Readouts: effects found with their intervals, CUPED reduces variance, guardrails, SRM, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.experiments.power import plan_power
from workbench.experiments.readout import ReadoutError, read_experiment


def _units(rng, n=20000, lift=0.0, arms=("control", "treatment")):
    prop = rng.gamma(2.0, 0.5, n)                        # units differ: what CUPED explains
    pre_s = rng.poisson(100, n)
    s = rng.poisson(30, n) + 1
    variant = rng.choice(arms, n)
    p = np.clip(0.05 * prop * np.where(variant != arms[0], 1 + lift, 1.0), 0, 1)
    return pd.DataFrame({"unit_id": np.arange(n), "variant": variant, "sessions": s,
                         "conversions": rng.binomial(s, p), "pre_sessions": pre_s,
                         "pre_conversions": rng.binomial(pre_s, np.clip(0.05 * prop, 0, 1)),
                         "latency_sum": s * rng.normal(200, 20, n), })


def test_a_real_lift_is_found_and_cuped_narrows_it(rng):
    r = read_experiment(_units(rng, lift=0.2))
    c = r.primary
    assert c.seq_low > 0 and c.ci_low > 0
    assert c.relative_effect == pytest.approx(0.2, abs=0.07)
    assert 0.15 < c.variance_reduction < 0.6  # about 0.3 by the propensity model
    assert c.cuped_ci_high - c.cuped_ci_low < c.ci_high - c.ci_low
    assert c.seq_high - c.seq_low > c.cuped_ci_high - c.cuped_ci_low  # always valid is wider
    assert c.prob_better > 0.99
    assert "a real improvement" in r.summary()


def test_no_effect_is_not_declared(rng):
    r = read_experiment(_units(rng, lift=0.0))
    assert r.primary.seq_low < 0 < r.primary.seq_high
    assert "not yet distinguishable" in r.summary()


def test_multi_arm_and_guardrail(rng):
    u = _units(rng, lift=0.3, arms=("control", "b", "c"))
    u.loc[u.variant == "c", "latency_sum"] *= 1.3      # arm c is slower
    r = read_experiment(u, guardrails={"latency_ms": ("latency_sum", "sessions", "lower")})
    assert [c.arm for c in r.comparisons] == ["b", "c"]
    failed = {g["arm"] for g in r.guardrails if g["failed"]}
    assert failed == {"c"} and "Guardrail failed: latency_ms" in r.summary()


def test_srm_is_reported_in_the_readout(rng):
    u = _units(rng)
    u = u[~((u.variant == "treatment") & (rng.random(len(u)) < 0.1))]
    r = read_experiment(u)
    assert r.srm["mismatch"] and r.summary().startswith("Sample-ratio mismatch")


def test_bad_input_names_the_problem(rng):
    u = _units(rng, n=100)
    with pytest.raises(ReadoutError, match="lack column.*conversions"):
        read_experiment(u.drop(columns="conversions"))
    with pytest.raises(ReadoutError, match="no control arm 'ctl'; arms are: control, treatment"):
        read_experiment(u, control="ctl")


def test_power_plan_is_consistent():
    small = plan_power(0.01, 0.2, units_per_hour=1000)
    big = plan_power(0.02, 0.2, units_per_hour=1000)
    assert big.units_fixed < small.units_fixed
    assert big.hours_sequential <= small.hours_sequential
    assert small.hours_fixed <= small.hours_sequential
