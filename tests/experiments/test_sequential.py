"""Always-valid inference: the confidence sequence keeps its error when watched after each batch."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.experiments.sequential import (hypothesis_bayes_factor, mixture_halfwidth,
                                              msprt_statistic, update_confidence)


def _aa_paths(rng, runs, batches, n=200, p=0.04):
    """Cumulative difference and its variance for A/A runs watched after every batch."""
    a = rng.binomial(n, p, (runs, batches)).cumsum(1)
    b = rng.binomial(n, p, (runs, batches)).cumsum(1)
    m = n * np.arange(1, batches + 1)
    pa, pb = a / m, b / m
    var = (pa * (1 - pa) + pb * (1 - pb)) / m
    return pa - pb, var


def test_peeking_inflates_the_fixed_interval_but_not_the_sequence(rng):
    est, var = _aa_paths(rng, 2000, 40)
    fixed = (np.abs(est) > 1.96 * np.sqrt(var)).any(1).mean()
    seq = (np.abs(est) > mixture_halfwidth(var, alpha=0.05, tau=0.01)).any(1).mean()
    assert fixed > 0.15          # peeking 40 times at a 95% interval errs far beyond 5%
    assert seq <= 0.05           # the confidence sequence keeps alpha over all looks


def test_sequence_is_the_inverse_of_the_msprt():
    v, tau, alpha = 2e-6, 0.01, 0.05
    hw = float(mixture_halfwidth(v, alpha=alpha, tau=tau))
    assert float(msprt_statistic(hw, v, tau=tau)) == pytest.approx(1 / alpha, rel=1e-9)


def test_bayes_factor_moves_the_confidence_the_right_way():
    v = 1e-6
    assert float(hypothesis_bayes_factor(0.02, v, delta=0.02, spread=0.005)) > 1e6
    assert float(hypothesis_bayes_factor(0.0, v, delta=0.02, spread=0.005)) < 1e-3
    assert update_confidence(0.5, 3.0) == pytest.approx(0.75)


@pytest.mark.parametrize("bad", [dict(alpha=0), dict(alpha=1), dict(tau=0)])
def test_bad_parameters_are_refused(bad):
    kw = {"alpha": 0.05, "tau": 0.01, **bad}
    with pytest.raises(ValueError):
        mixture_halfwidth(1e-6, **kw)
