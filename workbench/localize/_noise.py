"""Noise model of a leaf's deviation, slice test statistics and FDR control.

Private to :mod:`workbench.localize`.

Variance model. The deviation of leaf *i* from its expectation, ``y_i - mu_i``, is
taken to have variance ``a * mu_i + b * mu_i**2``: the first term is Poisson-like
(counts; quasi-Poisson when ``a != 1``), the second multiplicative (forecast error
that scales with the level, or a rate that wobbles from period to period). Leaves
are independent given the expectation, so a slice's variance is the sum over its
leaves, which aggregates like any other measure. ``a`` and ``b`` are fitted on the
leaves themselves with a trimmed, iteratively reweighted moment fit (leaves beyond
three standard deviations are root-cause candidates, not noise, and are left out;
the estimate is corrected for the trimming). When the observed values are whole
numbers they are counts, and ``a`` is not allowed below 1 (Poisson is a floor:
trimming would otherwise under-estimate the spread of sparse counts).

Slice statistic. The efficient score test that all leaves of the slice moved by one
common factor (Squeeze's "ripple effect" as a likelihood statement); with
Poisson-like noise it is the test of the slice total, with multiplicative noise it
weighs every leaf alike. Its Poisson part is corrected towards the signed root of
the Poisson deviance, which keeps the correct tail for small counts (a Wald z on
three events against an expectation of 0.5 is far too optimistic and would favour
tiny, over-specific slices).

Multiple testing: Benjamini and Hochberg (1995), step-up, over every slice tested.
"""
from __future__ import annotations

import numpy as np
from scipy import special

_CHI2_1_MEDIAN = 0.45493642311957283
_TRIM_Z = 3.0
# E[Z^2 | |Z| <= 3] for a standard normal: the trimmed mean of squared residuals is
# this fraction of the variance.
_TRIM_KAPPA = float(
    (special.erf(_TRIM_Z / np.sqrt(2)) - 2 * _TRIM_Z * np.exp(-_TRIM_Z ** 2 / 2) / np.sqrt(2 * np.pi))
    / special.erf(_TRIM_Z / np.sqrt(2))
)


def is_count_data(y: np.ndarray) -> bool:
    """Whole, non-negative observed values: treat as counts (Poisson floor on variance)."""
    if y.size == 0:
        return False
    return bool(np.all(y >= 0) and np.all(np.abs(y - np.round(y)) < 1e-9) and y.max() > 0)


def _wls_two(x1, x2, t, w, a_floor):
    """Weighted least squares t ~ a*x1 + b*x2 with a >= a_floor, b >= 0."""
    def fit_b_only(a):
        den = np.sum(w * x2 * x2)
        b = np.sum(w * x2 * (t - a * x1)) / den if den > 0 else 0.0
        return a, max(b, 0.0)

    def fit_a_only():
        den = np.sum(w * x1 * x1)
        a = np.sum(w * x1 * t) / den if den > 0 else a_floor
        return max(a, a_floor), 0.0

    s11, s12, s22 = np.sum(w * x1 * x1), np.sum(w * x1 * x2), np.sum(w * x2 * x2)
    r1, r2 = np.sum(w * x1 * t), np.sum(w * x2 * t)
    det = s11 * s22 - s12 * s12
    if det > 1e-12 * max(s11 * s22, 1e-300):
        a = (r1 * s22 - r2 * s12) / det
        b = (s11 * r2 - s12 * r1) / det
        if a >= a_floor and b >= 0:
            return a, b
    # Constrained: compare the two boundary fits by weighted residual.
    cands = [fit_b_only(a_floor), fit_a_only()]
    errs = [np.sum(w * (t - a * x1 - b * x2) ** 2) for a, b in cands]
    return cands[int(np.argmin(errs))]


def fit_variance(y: np.ndarray, mu: np.ndarray, *, counts: bool,
                 offset: np.ndarray | None = None) -> tuple[float, float]:
    """Fit ``Var(y - mu) = a*mu + b*mu**2 + offset`` robustly on the leaves.

    ``offset`` is a known part of the variance (the uncertainty of a baseline rate
    estimated from few events).

    Returns
    -------
    (a, b)
        Non-negative coefficients; ``a >= 1`` when ``counts``.
    """
    a_floor = 1.0 if counts else 0.0
    ok = mu > 0
    if ok.sum() < 8:
        return (max(1.0, a_floor) if counts else 1.0), 0.0
    yy, mm = y[ok], mu[ok]
    off = np.zeros_like(mm) if offset is None else offset[ok]
    e2 = (yy - mm) ** 2
    # Robust start from medians (net of the known offset); the larger of the two
    # one-term models is a safe (too wide) start, which the trimmed iterations tighten.
    net = np.maximum(e2 - off, 0.0)
    a0 = max(np.median(net / mm) / _CHI2_1_MEDIAN, a_floor)
    b0 = np.median(net / mm ** 2) / _CHI2_1_MEDIAN
    v = np.maximum(a0 * mm, b0 * mm ** 2) + off
    if not np.any(v > 0):
        return max(a_floor, 1e-12), 0.0
    a, b = a0, 0.0
    for _ in range(12):
        v = np.maximum(v, 1e-300)
        keep = e2 <= (_TRIM_Z ** 2) * v
        if keep.mean() < 0.5:
            # More than half the leaves beyond 3 sd: the start is too tight; widen.
            v = v * 4.0
            continue
        w = 1.0 / v[keep] ** 2
        a_new, b_new = _wls_two(mm[keep], mm[keep] ** 2, e2[keep] / _TRIM_KAPPA - off[keep], w,
                                a_floor)
        # Anchor the scale on the median: root-cause leaves let in by a wide start must
        # not inflate the fit that lets them in (the median resists up to half the leaves).
        base = a_new * mm + b_new * mm ** 2
        c = np.median(np.maximum(e2 - off, 0.0) / np.maximum(base, 1e-300)) / _CHI2_1_MEDIAN
        if c < 1.0:
            a_new, b_new = max(a_new * c, a_floor), b_new * c
        v_new = a_new * mm + b_new * mm ** 2 + off
        done = abs(a_new - a) <= 1e-4 * max(a, 1e-12) and abs(b_new - b) <= 1e-4 * max(b, 1e-12)
        a, b, v = a_new, b_new, v_new
        if done:
            break
    if a <= 0 and b <= 0:
        a = max(a_floor, 1e-12)
    return float(a), float(b)


def refit_variance(y: np.ndarray, mu: np.ndarray, *, counts: bool, offset: np.ndarray,
                   start: tuple[float, float], winsor: float = 64.0) -> tuple[float, float]:
    """Untrimmed moment fit of the variance model on leaves already cleared of root causes.

    The trimmed fit of :func:`fit_variance` must ignore the tail because root-cause
    leaves live there; once the chosen slices are set aside the tail is noise again,
    and for over-dispersed counts (events that come in bursts) it is where the
    over-dispersion shows. Squared residuals are only winsorized at ``winsor`` times
    the current variance so that one wild leaf cannot dominate.
    """
    a_floor = 1.0 if counts else 0.0
    ok = mu > 0
    if ok.sum() < 8:
        return start
    yy, mm, off = y[ok], mu[ok], offset[ok]
    a, b = start
    v = np.maximum(a * mm + b * mm ** 2 + off, 1e-300)
    e2 = np.minimum((yy - mm) ** 2, winsor * v)
    for _ in range(4):
        a, b = _wls_two(mm, mm ** 2, e2 - off, 1.0 / v ** 2, a_floor)
        v = np.maximum(a * mm + b * mm ** 2 + off, 1e-300)
    return float(a), float(b)


def leaf_score_terms(y: np.ndarray, mu: np.ndarray, v: np.ndarray, mf: np.ndarray):
    """Per-leaf score ``u`` and information ``w`` of a common relative change.

    Under ``y_i = mu_i * (1 + delta) + noise`` with ``Var = v_i``, the efficient score
    for ``delta`` summed over a slice is ``U = sum(mu_i * (y_i - mu_i) / v_i)`` with
    information ``W = sum(mu_i**2 / v_i)``; both aggregate like measures. ``mf`` is the
    expectation floored at a small positive level, so a leaf that appears from nothing
    still carries some evidence.
    """
    v = np.maximum(v, 1e-300)
    # A leaf with nothing expected and nothing observed says nothing about a relative
    # change; one that appears from nothing counts as expected at the floor level.
    informative = (mu > 0) | (y != 0)
    return mf * (y - mu) / v, np.where(informative, mf * mf / v, 0.0)


def slice_z(Y, M, V, U, W, MF, *, a: float, nonneg: bool) -> np.ndarray:
    """Signed statistic of a slice: the score test of a common relative change.

    ``U / sqrt(W)`` is the efficient test that every leaf of the slice moved by the
    same factor (the "ripple effect"): for Poisson-like noise it equals the test of the
    slice total, ``(Y - M) / sqrt(V)``; for multiplicative noise it counts how many
    leaves agree rather than how large the largest leaf is. For the Poisson part of
    the variance (share ``a * MF / V``) the statistic is corrected towards the signed
    root of the Poisson deviance of the slice total, which keeps the right tail for
    small counts (three events against 0.5 expected is p ~ 0.014, not z = 3.5).
    """
    Y, M = np.asarray(Y, float), np.asarray(M, float)
    V = np.maximum(np.asarray(V, float), 1e-300)
    U, W = np.asarray(U, float), np.maximum(np.asarray(W, float), 1e-300)
    z = U / np.sqrt(W)
    if not nonneg or a <= 0:
        return z
    D = Y - M
    with np.errstate(divide="ignore", invalid="ignore"):
        Mp = np.maximum(M, 1e-300)
        ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0) / Mp), 0.0)
        rdev = np.sqrt(np.maximum(2.0 * (ylogy - D), 0.0))
        ratio = rdev / (np.abs(D) / np.sqrt(Mp))
        share = np.clip(a * np.asarray(MF, float) / V, 0.0, 1.0)
        corr = 1.0 + (ratio - 1.0) * share
    ok = np.isfinite(corr) & (M > 0) & (D != 0)
    return np.where(ok, z * corr, z)


def two_sided_p(z: np.ndarray) -> np.ndarray:
    return special.erfc(np.abs(np.asarray(z, float)) / np.sqrt(2.0))


def z_for_p(p: float) -> float:
    """|z| whose two-sided p-value is ``p``."""
    return float(np.sqrt(2.0) * special.erfcinv(min(max(p, 1e-300), 1.0)))


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same order as ``p``."""
    p = np.asarray(p, float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


class BHCurve:
    """Benjamini-Hochberg q-values of a family, looked up by p-value.

    Sorting once and reading q off the step-up curve avoids keeping a q-value per
    slice when millions of slices are tested.
    """

    def __init__(self, p: np.ndarray):
        p = np.sort(np.asarray(p, float))
        self.m = int(p.size)
        self._p = p
        if self.m:
            ranked = p * self.m / np.arange(1, self.m + 1)
            self._q = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
        else:
            self._q = p

    def q(self, p: float) -> float:
        if self.m == 0:
            return float(min(p, 1.0))
        j = int(np.searchsorted(self._p, p, side="left"))
        if j >= self.m:
            return 1.0
        return float(self._q[j])
