"""The leaf model of the localization search: expectations, noise, cuboid aggregates.

Steps 1-2 of :mod:`workbench.localize.search`: the expectation of every leaf (a
ratio's baseline rate shrunk by empirical Bayes, method of moments, towards a
main-effects model fitted by iterative proportional fitting; Kitagawa 1955 for
why leaf-level rates are used), its variance under the noise model of
:mod:`workbench.localize._noise`, and the aggregates of one cuboid
(``numpy.bincount`` over integer codes, as HotSpot, Sun et al. 2018, aggregates
its lattice).
"""
from __future__ import annotations

import numpy as np

from workbench.errors import UsageError
from workbench.localize import _noise
from workbench.localize._cube import CodedLeaves


def _main_effects_rate(cube: CodedLeaves, iters: int = 6) -> np.ndarray:
    """Baseline rate of each leaf under a main-effects (independence) model.

    Iterative proportional fitting of ``rate_i = r0 * prod_d g_d(value_i)`` to the
    baseline numerator margins of every dimension: the prior a leaf's own baseline rate
    is shrunk towards. Each factor is itself shrunk towards 1 by a method-of-moments
    prior (Poisson sampling variance ``1 / E_v`` against the real spread ``tau_d**2``
    of the factors), so a value seen a handful of times does not get a wild rate.
    """
    bn, bd = cube.base_num, cube.base_den
    r0 = bn.sum() / bd.sum()
    p = np.full(cube.n, r0)
    for _ in range(iters):
        for i, codes in enumerate(cube.codes):
            card = len(cube.labels[i])
            num = np.bincount(codes, weights=bn, minlength=card)
            exp = np.bincount(codes, weights=bd * p, minlength=card)
            pos = exp > 0
            if not pos.any():
                continue
            rho = num[pos] / exp[pos]
            tau2 = (np.sum(exp[pos] * (rho - 1.0) ** 2) - pos.sum()) / np.sum(exp[pos])
            if tau2 <= 0:
                continue
            kappa = 1.0 / tau2
            p = p * ((num + kappa) / (exp + kappa))[codes]
    return p


def _shrunk_rates(cube: CodedLeaves) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes baseline rate per leaf, shrunk to the main-effects prior, and its variance.

    ``E[bd_i * (r_i - p_i)**2] = tau2 * bd_i + s * p_i``: ``tau2`` is the real spread of
    leaf rates around the prior, ``s * p_i / bd_i`` the sampling variance of a leaf's
    rate (``s`` is 1 for raw counts and smaller when the baseline is an average of
    several periods, which the leaves do not say). Both are fitted across leaves of
    different sizes by weighted least squares (``s`` is fixed at 1 when the baseline
    numerators are whole numbers, and capped at 1 otherwise); the prior weighs ``k_i = s * p_i / tau2``
    (in denominator units) and the posterior variance of a leaf's rate is about
    ``s * rate / (bd + k)``.
    """
    bn, bd = cube.base_num, cube.base_den
    p = _main_effects_rate(cube)
    pos = bd > 0
    if pos.sum() < 8:
        return p, np.zeros_like(p)
    r = bn[pos] / bd[pos]
    t = bd[pos] * (r - p[pos]) ** 2
    x1, x2 = bd[pos], np.abs(p[pos])
    counts = _noise.is_count_data(bn)
    tau2, s_ = 0.0, 1.0
    for _ in range(4):
        pred = np.maximum(tau2 * x1 + s_ * x2, 1e-300)
        w = 1.0 / pred ** 2
        if counts:
            # Raw counts: the sampling variance is Poisson (s = 1); only tau2 is unknown.
            tau2 = max(float(np.sum(w * x1 * (t - x2))) / max(float(np.sum(w * x1 * x1)), 1e-300), 0.0)
        else:
            tau2, s_ = _noise._wls_two(x1, x2, t, w, 0.0)
            # With few leaves or leaves of similar size the two terms are hard to tell
            # apart; s above 1 (more than Poisson) would shrink real rate differences away.
            s_ = min(s_, 1.0)
    if tau2 <= 0:
        return p, s_ * np.abs(p) / max(bd.sum(), 1e-300)
    k = s_ * np.abs(p) / tau2
    rate = np.where(pos, (bn + k * p) / np.where(pos, bd + k, 1.0), p)
    return rate, s_ * np.abs(rate) / (bd + k)


def _expectation(cube: CodedLeaves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed ``y``, expected ``mu`` and the variance of ``mu`` per leaf (numerator units)."""
    y = cube.obs_num
    if cube.kind == "sum":
        return y, cube.base_num.copy(), np.zeros(cube.n)
    if cube.base_den.sum() <= 0:
        raise UsageError("the baseline denominator sums to zero: no baseline rate to compare with")
    rate, var_rate = _shrunk_rates(cube)
    return y, cube.obs_den * rate, cube.obs_den ** 2 * var_rate


def leaf_noise(cube: CodedLeaves) -> np.ndarray:
    """Variance of each leaf's observed numerator around its expectation (numerator units).

    The same model :func:`localize` tests slices with (see ``_noise``); shared with
    :func:`workbench.localize.decompose_rate_mix` for the test of the rate effect.
    """
    y, mu, off = _expectation(cube)
    a, b = _noise.fit_variance(y, mu, counts=_noise.is_count_data(y), offset=off)
    pos = mu[mu > 0]
    m0 = float(np.quantile(pos, 0.05)) if pos.size else 1.0
    mf = np.maximum(mu, m0)
    return a * mf + b * mf * mf + off


# Rows of the per-cell / per-slice measure arrays.
_Y, _M, _V, _U, _W, _MF, _N = range(7)


class _Cuboid:
    """Aggregates of one cuboid over the (pruned) cells, kept up to date as leaves are explained."""

    __slots__ = ("combo", "keys", "A", "N0", "selectable", "blocked", "depth", "n_fine", "p0",
                 "z0", "offset")

    def __init__(self, combo, keys, A, selectable, n_fine):
        self.combo, self.keys, self.A = combo, keys, A
        self.N0 = A[_N].copy()
        self.selectable = selectable
        self.blocked = ~selectable
        self.depth = len(combo)
        self.n_fine = n_fine


def _aggregate(key, n_cells, X, dense_limit):
    """Group ``key`` and sum every row of ``X``; returns (unique sorted keys, sums)."""
    kmax = int(key.max()) + 1 if key.size else 1
    if kmax <= max(dense_limit, 4 * n_cells):
        # Dense: one count over the key space, then compact positions for the sums.
        cnt = np.bincount(key, minlength=kmax)
        nz = np.flatnonzero(cnt)
        pos = np.zeros(kmax, dtype=np.int64)
        pos[nz] = np.arange(len(nz))
        inv = pos[key]
        A = np.stack([np.bincount(inv, weights=x, minlength=len(nz)) for x in X])
        return nz.astype(np.int64), A
    uniq, inv = np.unique(key, return_inverse=True)
    A = np.stack([np.bincount(inv, weights=x, minlength=len(uniq)) for x in X])
    return uniq, A
