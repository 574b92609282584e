"""``_dowhy.LinearEffect`` is DoWhy's ``backdoor.linear_regression``, only cheaper.

Same estimand, same OLS fit, same estimate, and the same refutations with the
same seeds (the refuters re-estimate with the estimator class of the estimate
they are given, so each of their simulations runs the cheaper one).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _data(seed: int = 7, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, n).astype(float)
    base = rng.normal(0, 1, n)
    dose = (rng.random(n) < 0.4).astype(float) * rng.choice([0.25, 1.0], n)
    y = 0.3 * base + 0.02 * hour - 0.2 * dose + rng.normal(0, 0.1, n)
    return pd.DataFrame({"dose": dose, "y": y, "hour": hour, "base": base})


def _estimate(df: pd.DataFrame, method: str):
    from dowhy import CausalModel

    from workbench.causal._dowhy import quiet

    with quiet(0):
        model = CausalModel(data=df, treatment="dose", outcome="y",
                            common_causes=["hour", "base"])
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        est = model.estimate_effect(estimand, method_name=method, control_value=0,
                                    treatment_value=1)
    return model, estimand, est


@pytest.mark.parametrize("seed", [7, 11])
def test_same_estimate_and_refutations_as_dowhy_linear_regression(seed):
    from workbench.causal._dowhy import linear_effect_method, quiet

    df = _data(seed)
    ref = _estimate(df, "backdoor.linear_regression")
    new = _estimate(df, linear_effect_method())
    assert type(new[2].estimator).__name__ == "LinearEffect"
    assert new[2].value == pytest.approx(ref[2].value, rel=1e-12, abs=1e-14)
    assert new[2].value == pytest.approx(-0.2, abs=0.03)  # the simulated effect
    # the fitted model is the same OLS (verify reads its standard errors)
    np.testing.assert_allclose(np.asarray(new[2].estimator.model.bse),
                               np.asarray(ref[2].estimator.model.bse), rtol=1e-12)
    for name, kw in [("placebo_treatment_refuter", {"placebo_type": "permute"}),
                     ("random_common_cause", {}),
                     ("data_subset_refuter", {"subset_fraction": 0.8})]:
        got = []
        for model, estimand, est in (ref, new):
            with quiet(0):
                r = model.refute_estimate(estimand, est, method_name=name, num_simulations=5,
                                          random_state=np.random.RandomState(3), **kw)
            got.append((float(r.new_effect), r.refutation_result))
        assert got[1][0] == pytest.approx(got[0][0], rel=1e-9, abs=1e-12), name
        if got[0][1] and got[0][1].get("p_value") is not None:
            assert got[1][1]["p_value"] == pytest.approx(got[0][1]["p_value"], abs=1e-9), name


def test_estimating_on_other_rows_than_those_fitted():
    """The mean feature row kept from the fit is used only for the rows fitted."""
    from workbench.causal._dowhy import quiet

    df = _data(3)
    _, _, est = _estimate(df, "backdoor.workbench.causal._dowhy.LinearEffect")
    other = df.sample(frac=0.5, random_state=1).reset_index(drop=True)
    with quiet(0):
        a = est.estimator._do(1.0, other) - est.estimator._do(0.0, other)
        row = est.estimator.interventional_outcomes(other, 1.0).mean() - \
            est.estimator.interventional_outcomes(other, 0.0).mean()
    assert a == pytest.approx(row, rel=1e-9)
    assert a == pytest.approx(est.value, rel=1e-9)  # linear: the same effect on any rows
