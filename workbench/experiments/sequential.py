"""Always-valid inference for a difference that is watched after every batch.

A fixed-horizon 95% interval looked at after every micro-batch is wrong far
more than 5% of the time (the "peeking" problem). The **mixture sequential
probability ratio test** (mSPRT; Robbins 1970, Johari et al., "Peeking at A/B
tests: why it matters, and what to do about it", KDD 2017) mixes the
likelihood ratio of a normal estimate over a normal prior ``N(0, tau^2)`` on
the effect::

    Lambda_n = sqrt(V / (V + tau^2)) * exp(tau^2 * theta_hat^2 / (2 V (V + tau^2)))

which is a non-negative martingale under ``theta = 0``; by Ville's inequality
``P(sup_n Lambda_n >= 1/alpha) <= alpha``. Inverting the test gives the
normal-mixture **confidence sequence** (Howard, Ramdas, McAuliffe and Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
Statistics 2021, eq. 3.7)::

    theta_hat +- sqrt((V (V + tau^2) / tau^2) * (log((V + tau^2) / V) + 2 log(1/alpha)))

which covers the true effect at every look simultaneously with probability
``1 - alpha``.

Written here rather than taken from a library: the closed form is two lines
of numpy and is vectorized over thousands of simulated runs (the A/A
benchmark watches 2,000 runs after every batch); ``confseq`` offers the same
boundary for scalar inputs through a compiled extension, and neither scipy
nor statsmodels has it.

The evidence for a *hypothesis* ("reverting this change restores the metric
by about ``delta``") against "the change is innocent" (``theta = 0``) is the
Bayes factor of the same normal mixture centred at ``delta`` (a mixture
likelihood ratio too, so also a test martingale under the innocent case):
:func:`hypothesis_bayes_factor`.
"""
from __future__ import annotations

import numpy as np


def mixture_halfwidth(variance, *, alpha: float = 0.05, tau: float):
    """Half-width of the normal-mixture confidence sequence.

    Parameters
    ----------
    variance:
        Variance ``V`` of the estimate at this look (array or scalar).
    alpha:
        Error allowed over the whole sequence of looks.
    tau:
        Standard deviation of the mixing prior on the effect; choose it near
        the effect you expect (Johari et al. 2017, section 4.3).

    Examples
    --------
    >>> round(float(mixture_halfwidth(1e-6, tau=0.01)), 5)
    0.00327
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    v = np.maximum(np.asarray(variance, dtype=float), 1e-300)
    t2 = float(tau) ** 2
    return np.sqrt(v * (v + t2) / t2 * (np.log((v + t2) / v) + 2.0 * np.log(1.0 / alpha)))


def msprt_statistic(estimate, variance, *, tau: float):
    """The mixture likelihood ratio ``Lambda`` of ``theta != 0`` against ``theta = 0``."""
    v = np.maximum(np.asarray(variance, dtype=float), 1e-300)
    t2 = float(tau) ** 2
    est = np.asarray(estimate, dtype=float)
    return np.sqrt(v / (v + t2)) * np.exp(t2 * est ** 2 / (2.0 * v * (v + t2)))


def hypothesis_bayes_factor(estimate, variance, *, delta: float, spread: float):
    """Bayes factor of ``theta ~ N(delta, spread^2)`` against ``theta = 0``.

    Returns the ratio of the two marginal likelihoods of the estimate; values
    above 1 favour the hypothesis. Computed in logs, clipped to
    ``[1e-12, 1e12]`` so that odds stay finite.
    """
    v = np.maximum(np.asarray(variance, dtype=float), 1e-300)
    est = np.asarray(estimate, dtype=float)
    s2 = v + float(spread) ** 2
    log_bf = (-0.5 * np.log(s2 / v) - (est - delta) ** 2 / (2 * s2) + est ** 2 / (2 * v))
    return np.exp(np.clip(log_bf, -27.6, 27.6))


def update_confidence(prior: float, bayes_factor) -> np.ndarray:
    """Posterior probability from a prior probability and a Bayes factor."""
    p = min(max(float(prior), 1e-6), 1 - 1e-6)
    odds = p / (1 - p) * np.asarray(bayes_factor, dtype=float)
    return odds / (1 + odds)
