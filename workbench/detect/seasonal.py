"""Seasonal quasi-likelihood baseline with a segment scan: the ``"seasonal"`` detector.

One algorithm in one module, over the 800-line house limit on purpose: the baseline fit,
its error model and the scan refit each other in one loop (steps 1-3 below), and
splitting them would spread that loop over modules.

Method
------
1. **Baseline.** The expected numerator of bucket ``t`` is
   ``mu_t = den_t * exp(x_t' beta)`` with ``x_t`` = intercept, a log-linear
   trend, hour-of-day effects (UTC), day-of-week effects and a weekend-specific
   daily shape (three harmonics). It is a quasi-likelihood GLM (McCullagh and
   Nelder 1989, ch. 9): variance ``phi * V(mu)`` with the binomial
   ``V = mu (1 - p)`` for a proportion (``num <= den``) and the Poisson
   ``V = mu`` for counts, amounts and other ratios. It is fitted by IRLS with
   flat-top bisquare weights on deviance residuals (robust GLM in the spirit of
   Cantoni and Ronchetti 2001; the flat top avoids a downward bias at skewed
   low counts) so earlier incidents do not bend it; a weak ridge prior keeps
   empty hours finite, and a sparse series gets fewer terms (about ten events
   per parameter: a smooth daily shape, then a constant rate). This is the
   outbreak-detection design of Farrington et al. (1996) and Noufaily et al.
   (2013) -- quasi-Poisson regression on past periods, past outbreaks
   down-weighted, prediction variance including the baseline's own error --
   moved from weekly counts to hourly buckets.
2. **Error model.** Model error (what no baseline explains) is persistent, so
   residuals are modelled as over-dispersed white noise plus AR(1):
   ``acf(j) = c a^j``. ``phi``, ``c`` and ``a`` are fitted by matching lagged
   residual products to their expectation ``phi M R M'`` (``M = I - H``: the fit
   absorbs part of the correlation, which naive residual ACFs miss), and
   ``Cov(beta)`` is the matching sandwich (HAC). Integer data get ``phi >= 1``.
3. **Fit before the onset.** The baseline is first fitted on the history before
   the scanned period; after each scan it is refitted on everything except
   ``[onset - guard, end]`` (everything from ``onset - guard`` on when the
   divergence runs to the last bucket) and the scan is repeated until the
   window is stable. The incident never contaminates its own baseline.
4. **Scan.** For every window ``[a, b]`` in the scanned period (all at once,
   from cumulative sums) the deviance of the observed sum against the expected
   one, ``2 [O log(O/E) - (O - E)]`` (or its binomial form), is the
   likelihood-ratio statistic of a multiplicative shift during the window: the
   CUSUM / generalized likelihood ratio of Page (1954) and Siegmund and
   Venkatraman (1995) with the bounded "epidemic" alternative of Levin and
   Kline (1985), in the Poisson-likelihood form of Kulldorff's (1997) scan
   statistic, which stays valid at low counts (integer data get a continuity
   correction of half a count). The onset is the maximizing
   ``a``. A window ending before the last bucket is preferred to one running
   to the end only if it gains ``end_penalty`` (after correcting for
   autocorrelation), a BIC-like price for the extra change point, so a bounded
   episode ends where the series returns to baseline and a persistent shift
   runs to the end.
   The onset comes with a confidence set: the starts whose profile deviance
   is within ``2 log(2 / 0.05)`` of the best (Siegmund 1988; the constant is
   Hinkley's 1970 random-walk tail, the location not being a regular
   parameter); it is wide when the first hours carry few events. A staged
   change (10%, then 50%, then 100% of traffic) makes the scan pick its largest
   step; binary segmentation (Vostrikova 1981) then looks for an earlier step
   adjacent to the window, in the same direction, significant on its own
   against a baseline fitted before both, and dates the divergence from it
   (one step back at most: a still smaller first step is dated too loosely by
   the data; the change log's rollout steps date it, ``workbench.events``).
5. **Score.** The window's signed z combines three variances: sampling noise
   times ``phi`` (through the deviance, near-normal even for a handful of
   events), the autocorrelation inflation of a sum of ``L`` buckets, and the
   baseline's own uncertainty ``Var(log E) = g' Cov(beta) g / E^2`` with
   ``g = sum mu_t x_t`` (delta method), profiled out as a log-normal error of
   ``E``. It is a z: on quiet series with a fixed window its standard deviation
   is 0.9..1.2 from 50 to 20,000 per hour, so it compares across metrics and
   slices. Low volume widens the first term, model error the second and third.
6. **Significance.** Scanning ~10^4 windows makes the largest |z| of a quiet
   series large by chance (its 95% quantile is about 3.3 to 3.5). The p-value is
   Sidak-corrected, ``p = 1 - (1 - p_z) ** (k * n)`` for ``n`` scanned onsets,
   with ``k`` (``DetectConfig.scan_tests_per_bucket``) calibrated on simulated
   null series -- Poisson/binomial noise at 5 to 20,000 per hour with AR(1)
   model error -- the way scan statistics are calibrated by Monte Carlo
   (Kulldorff 1997); ``tests/detect/simulate.py --calibrate`` re-measures it.
   With a given ``window`` nothing is scanned and the p-value is the plain
   two-sided one.

References
----------
Cantoni, E. and Ronchetti, E. (2001). Robust inference for generalized linear
models. JASA 96, 1022-1030.
Farrington, C. P., Andrews, N. J., Beale, A. D. and Catchpole, M. A. (1996). A
statistical algorithm for the early detection of outbreaks of infectious
disease. JRSS A 159, 547-563.
Kulldorff, M. (1997). A spatial scan statistic. Commun. Statist. Theory Meth.
26, 1481-1496.
Levin, B. and Kline, J. (1985). The cusum test of homogeneity with an
application in spontaneous abortion epidemiology. Stat. Med. 4, 469-488.
McCullagh, P. and Nelder, J. A. (1989). Generalized Linear Models, 2nd ed.
Noufaily, A. et al. (2013). An improved algorithm for outbreak detection in
multiple surveillance systems. Stat. Med. 32, 1206-1222.
Hinkley, D. V. (1970). Inference about the change-point in a sequence of random
variables. Biometrika 57, 1-17.
Page, E. S. (1954). Continuous inspection schemes. Biometrika 41, 100-115.
Siegmund, D. (1988). Confidence sets in change-point problems. Int. Statist. Rev.
56, 165-176.
Vostrikova, L. Yu. (1981). Detecting "disorder" in multidimensional random
processes. Soviet Math. Dokl. 24, 55-59.
Siegmund, D. and Venkatraman, E. S. (1995). Using the generalized likelihood
ratio statistic for sequential detection of a change-point. Ann. Statist. 23,
255-271.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri, xlogy

from workbench.errors import UsageError

from . import _trend
from .config import DetectConfig
from .result import DivergenceResult

__all__ = ["SeasonalDetector"]

_DAY = pd.Timedelta("1D")
_WEEK = pd.Timedelta("7D")


# --------------------------------------------------------------------------- design
@dataclass(frozen=True)
class _Design:
    X: np.ndarray          # (n, k) regressors over the whole grid
    group: np.ndarray      # (k,) 0 const, 1 trend, 2 daily, 3 weekly, 4 smooth daily
    names: tuple


def _fourier(phase: np.ndarray, period: int, harmonics: int) -> list[np.ndarray]:
    ang = 2.0 * np.pi * phase / period
    out = []
    for h in range(1, harmonics + 1):
        out += [np.cos(h * ang), np.sin(h * ang)]
    return out


def _design(index: pd.DatetimeIndex, grain: pd.Timedelta) -> _Design:
    n = len(index)
    cols, group, names = [np.ones(n)], [0], ["const"]
    weeks = ((index - index[0]) / _WEEK).to_numpy(dtype=float)
    cols.append(weeks - weeks.mean())
    group.append(1)
    names.append("trend_per_week")
    per_day = int(_DAY // grain) if grain < _DAY and _DAY % grain == pd.Timedelta(0) else 0
    phase = None
    if per_day >= 2:
        phase = ((index - index.normalize()) // grain).to_numpy().astype(np.int64)
        if per_day <= 48:
            for j in range(1, per_day):
                cols.append((phase == j).astype(float))
                group.append(2)
                names.append(f"phase_{j}")
        else:
            for j, c in enumerate(_fourier(phase, per_day, 12)):
                cols.append(c)
                group.append(2)
                names.append(f"daily_fourier_{j}")
        # A smooth daily shape (few parameters) for series too sparse for the above.
        for j, c in enumerate(_fourier(phase, per_day, min(3, (per_day - 1) // 2))):
            cols.append(c)
            group.append(4)
            names.append(f"daily_smooth_{j}")
    if grain <= _DAY:
        dow = index.day_of_week.to_numpy()
        for d in range(1, 7):
            cols.append((dow == d).astype(float))
            group.append(3)
            names.append(f"dow_{d}")
        if phase is not None:
            weekend = (dow >= 5).astype(float)
            for j, c in enumerate(_fourier(phase, per_day, 3)):
                cols.append(weekend * c)
                group.append(3)
                names.append(f"weekend_shape_{j}")
    return _Design(np.column_stack(cols), np.asarray(group), tuple(names))


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class _Fit:
    cols: np.ndarray       # indices of the design columns used
    beta: np.ndarray
    cov: np.ndarray        # sandwich: phi A^-1 (X'W^.5 R W^.5 X) A^-1, A = X'WX + ridge
    phi: float
    acf_c: float           # residual autocorrelation acf(j) = acf_c * acf_a ** j
    acf_a: float
    n_fit: int
    fit_start: int
    fit_end: int


def _variance(mu: np.ndarray, den: np.ndarray, binomial: bool) -> np.ndarray:
    if binomial:
        v = mu * np.clip(1.0 - mu / den, 1e-6, None)
    else:
        v = mu
    return np.maximum(v, 1e-300)


def _robust_weight(y, mu, den, binomial, phi, c):
    """Flat-top bisquare weight of the deviance residual, in units of ``sqrt(phi)``.

    Weight 1 up to ``c / 2``, falling smoothly to 0 at ``c``. Deviance residuals
    are near-symmetric even for small counts, and the flat top leaves the bulk
    untouched: a weight that shrinks ordinary residuals would bias the baseline
    of a skewed low-count series downwards.
    """
    r = np.sign(y - mu) * np.sqrt(_deviance(y, mu, den, binomial) / phi)
    u = np.clip((np.abs(r) - 0.5 * c) / (0.5 * c), 0.0, None)
    w = 1.0 - u * u
    return np.where(u < 1.0, w * w, 0.0)


def _fit(y, den, design: _Design, fit_idx: np.ndarray, index: pd.DatetimeIndex,
         binomial: bool, cfg: DetectConfig, error: tuple[float, float] | None = None) -> _Fit:
    """Robust quasi-likelihood IRLS (log link) on the buckets ``fit_idx``.

    ``error`` fixes the residual correlation ``(c, a)`` (estimated on the first,
    uncontaminated fit of a detection) instead of estimating it again.
    """
    span = index[fit_idx[-1]] - index[fit_idx[0]]
    yf, df = y[fit_idx], den[fit_idx]
    integer = bool(np.all(yf == np.round(yf)))
    # Information for the shape: events for counts, non-zero buckets otherwise.
    # About ten per parameter, or a sparse series is fitted to its noise (an
    # hour with no event yet would be predicted to stay empty).
    info = float(yf.sum()) if integer else float(min(yf.sum(), np.count_nonzero(yf)))
    group = design.group
    use = group == 0
    if cfg.trend and span >= 2 * _DAY and info >= 20:
        use |= group == 1
    if span >= 2 * _DAY:
        if info >= _INFO_PER_PARAM * np.sum(group == 2):
            use |= group == 2
        elif info >= _INFO_PER_PARAM * np.sum(group == 4):
            use |= group == 4
    if span >= cfg.weekly_min_history and info >= _INFO_PER_PARAM * np.sum(group == 3):
        use |= group == 3
    cols = np.flatnonzero(use)
    Xf = design.X[np.ix_(fit_idx, cols)]
    k = len(cols)
    off = np.log(df)
    # Prior precisions (log scale): weak on seasonal terms; on the trend, a prior
    # sd of cfg.trend_prior_sd per week -- noise in two weeks of a low-volume
    # series otherwise becomes a steep trend that is extrapolated for days.
    penalty = np.where(group[cols] >= 2, cfg.ridge, 0.0)
    if cfg.trend_prior_sd > 0:
        penalty = np.where(group[cols] == 1, cfg.trend_prior_sd ** -2, penalty)
    beta = np.zeros(k)
    beta[0] = np.log(max(yf.sum(), 0.5) / df.sum())
    phi = 1.0
    rw = np.ones(len(fit_idx))
    n = len(fit_idx)

    def state(b):
        eta_x = np.clip(Xf @ b, -60.0, 60.0)
        mu = np.exp(eta_x + off)
        v = _variance(mu, df, binomial)
        return eta_x, mu, v

    def dispersion(pearson, keep):
        m = int(keep.sum())
        return float(np.sum(pearson[keep] ** 2) / max(m - k, 1)) if m else 1.0

    for robust in (False, True):
        for _ in range(30):
            eta_x, mu, v = state(beta)
            resid = yf - mu
            pearson = resid / np.sqrt(v)
            if robust:
                rw = _robust_weight(yf, mu, df, binomial, phi, cfg.robust_c)
                phi = dispersion(pearson, rw > 0)
            else:
                phi = dispersion(pearson, np.ones(n, dtype=bool))
            phi = max(phi, 1e-12)
            w = rw * mu * mu / v
            zeta = eta_x + resid / np.maximum(mu, 1e-300)
            A = (Xf.T * w) @ Xf + np.diag(phi * penalty)
            A[np.diag_indices(k)] += 1e-10 * (np.trace(A) / k + 1.0)
            new = np.linalg.solve(A, Xf.T @ (w * zeta))
            step = new - beta
            big = np.max(np.abs(step))
            if big > 3.0:  # damp wild first steps (all-zero hours, bad start)
                step *= 3.0 / big
            beta = beta + step
            if big < 1e-6:
                break

    eta_x, mu, v = state(beta)
    pearson = (yf - mu) / np.sqrt(v)
    keep = _robust_weight(yf, mu, df, binomial, phi, cfg.robust_c) > 0

    # Error model: phi * V(mu) with correlation acf(j) = c * a**j (white noise
    # plus AR(1)): model error -- what the baseline does not explain -- is
    # persistent, so sums over long windows vary more than phi * sum V says, and
    # day-level coefficients are less certain than phi (X'WX)^-1 says. Residuals
    # of the fit are M u with M = I - H; their lagged products are matched to
    # E[e e'] = phi M R M' (moments corrected for the fit, which absorbs part
    # of the correlation), and Cov(beta) is the matching sandwich.
    xw = Xf * (keep * mu / np.sqrt(v))[:, None]
    e = np.where(keep, pearson, 0.0)
    A = xw.T @ xw + np.diag(phi * penalty)
    A[np.diag_indices(k)] += 1e-10 * (np.trace(A) / k + 1.0)
    A_inv = np.linalg.inv(A)
    if error is None:
        phi, c, a, meat = _error_model(e, fit_idx, xw, A_inv, _C_GRID, _A_GRID)
    else:
        phi, c, a, meat = _error_model(e, fit_idx, xw, A_inv, np.array([error[0]]),
                                       np.array([error[1]]))
    if integer:
        # Counts are at least about as noisy as Poisson/binomial; without this
        # floor an all-zero history would give phi ~ 0 and an infinite score.
        phi = max(phi, 1.0)
    cov = phi * (A_inv @ meat @ A_inv)
    cov = 0.5 * (cov + cov.T)
    return _Fit(cols, beta, cov, float(phi), c, a, n, int(fit_idx[0]), int(fit_idx[-1]))


_INFO_PER_PARAM = 10
_ACF_LAGS = 12
_A_GRID = np.array([0.0, 0.2, 0.35, 0.5, 0.6, 0.7, 0.75, 0.8, 0.84, 0.87, 0.9, 0.92, 0.94,
                    0.96, 0.975])
_C_GRID = np.linspace(0.0, 1.0, 41)


def _ar1_filter(x: np.ndarray, a: float) -> np.ndarray:
    """``F[t] = x[t] + a F[t-1]`` along axis 0, without a Python loop per row.

    Within blocks short enough that ``a**-len`` stays finite, the recursion is a
    rescaled cumulative sum, ``F[j] = a^j sum_{i<=j} a^-i x[i]``; blocks are
    chained by their last row.
    """
    n = len(x)
    block = max(1, int(200.0 / -np.log10(a)))   # a**-block <= 1e200
    out = np.empty_like(x)
    carry = np.zeros(x.shape[1:])
    for s in range(0, n, block):
        chunk = x[s:s + block]
        powers = a ** np.arange(len(chunk), dtype=float)[:, None]
        filt = np.cumsum(chunk / powers, axis=0) * powers + (a * powers) * carry
        out[s:s + len(chunk)] = filt
        carry = filt[-1]
    return out


def _ar1_apply(u: np.ndarray, t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``R_a @ u`` for ``R_a[i, j] = a**|t_i - t_j|``, every ``a`` of a grid at once.

    Forward and backward first-order recursive filters on the contiguous grid
    of positions ``t`` with zeros in the gaps (the same as decaying by
    ``a**gap`` across a gap): O(n k) per grid value instead of an n x n matrix.
    Returns shape ``(len(a), n, k)``.
    """
    grid = np.zeros((t[-1] - t[0] + 1, u.shape[1]))
    pos = t - t[0]
    grid[pos] = u
    out = np.empty((len(a), len(t), u.shape[1]))
    for g, ag in enumerate(a):
        if ag == 0.0:
            out[g] = u
            continue
        both = _ar1_filter(grid, ag) + _ar1_filter(grid[::-1], ag)[::-1]
        out[g] = both[pos] - u
    return out


def _lag_sums(x: np.ndarray, y: np.ndarray, lags: int) -> np.ndarray:
    """``sum_i x[..., i, :] . y[..., i + j, :]`` for j = 0..lags (leading dims broadcast)."""
    n = x.shape[-2]
    return np.stack([np.einsum("...im,...im->...", x[..., :n - j, :], y[..., j:, :])
                     for j in range(lags + 1)], axis=-1)


def _error_model(e, t, xw, A_inv, c_grid, a_grid):
    """Moment fit of (phi, c, a) over a grid to fit residuals ``e``; also X'W^.5 R W^.5 X."""
    n, k = xw.shape
    J = max(min(_ACF_LAGS, n // 4), 1)
    g = np.array([np.dot(e[:n - j], e[j:]) for j in range(J + 1)])
    P = xw @ A_inv                                                  # H = P xw'
    # Diagonal-band sums of M R M' = R - HR - RH + HRH for R = I and R = R_a.
    h_band = _lag_sums(P, xw, J)
    hh_band = _lag_sums(P @ (xw.T @ xw), P, J)
    t_ident = -2.0 * h_band + hh_band
    t_ident[0] += n
    Q = _ar1_apply(xw, t, a_grid)                                   # R_a xw, (G, n, k)
    r_band = np.stack([np.sum(a_grid[:, None] ** (t[j:] - t[:n - j])[None, :], axis=1)
                       for j in range(J + 1)], axis=-1)            # (G, J+1)
    G_mats = np.matmul(xw.T[None], Q)                               # xw' R_a xw
    t_ar = (r_band - _lag_sums(P[None], Q, J) - _lag_sums(Q, P[None], J)
            + _lag_sums(np.matmul(P[None], G_mats), P[None], J))
    # T(c, a) = (1 - c) T_I + c T_a ; fit acf_j = T_j / T_0 to g_j / g_0.
    T = (1.0 - c_grid)[:, None, None] * t_ident[None, None, :] \
        + c_grid[:, None, None] * t_ar[None, :, :]                  # (C, G, J+1)
    if g[0] <= 0:
        return 1e-12, 0.0, 0.0, xw.T @ xw
    model = T[..., 1:] / np.maximum(T[..., :1], 1e-12)
    sse = np.sum((model - g[1:] / g[0]) ** 2, axis=-1)
    ic, ia = np.unravel_index(np.argmin(sse), sse.shape)
    c, a = float(c_grid[ic]), float(a_grid[ia])
    if a == 0.0:
        c = 0.0
    phi = max(float(g[0] / max(T[ic, ia, 0], 1.0)), 1e-12)
    meat = (1.0 - c) * (xw.T @ xw) + c * G_mats[ia]
    return phi, c, a, meat


def _inflation(fit: "_Fit", length) -> np.ndarray:
    """Var(sum of L residuals) / (L * var of one), for acf(j) = c * a**j."""
    L = np.maximum(np.asarray(length, dtype=float), 1.0)
    c, a = fit.acf_c, fit.acf_a
    if c <= 0.0 or a <= 0.0:
        return np.ones_like(L)
    ar = (1.0 + a) / (1.0 - a) - 2.0 * a * (1.0 - a ** L) / (L * (1.0 - a) ** 2)
    return 1.0 + c * (ar - 1.0)


def _long_run_inflation(fit: "_Fit") -> float:
    return 1.0 + 2.0 * fit.acf_c * fit.acf_a / (1.0 - fit.acf_a)


@dataclass(frozen=True)
class _Prediction:
    rate: np.ndarray       # expected num per unit den, every bucket
    mu: np.ndarray         # expected num (NaN where den unknown)
    v: np.ndarray          # variance function at mu (0 where missing)
    r: np.ndarray          # num - mu (0 where missing)
    h: np.ndarray          # Var(log mu_hat), every bucket


def _predict(fit: _Fit, design: _Design, y, den, present, binomial) -> _Prediction:
    X = design.X[:, fit.cols]
    rate = np.exp(np.clip(X @ fit.beta, -60.0, 60.0))
    mu = den * rate
    v = np.where(present, _variance(np.where(present, mu, 1.0), np.where(present, den, 2.0),
                                     binomial), 0.0)
    r = np.where(present, y - np.where(present, mu, 0.0), 0.0)
    h = np.einsum("ij,jk,ik->i", X, fit.cov, X)
    return _Prediction(rate, mu, v, r, np.maximum(h, 0.0))


# --------------------------------------------------------------------------- scan
def _deviance(O, E, D, binomial: bool):
    """Deviance of observing sum ``O`` where the baseline expects ``E`` (of ``D`` trials).

    ``2 [O log(O/E) - (O - E)]`` (Poisson) or the binomial analogue: the
    likelihood-ratio statistic of a multiplicative shift, near-normal (as a
    signed root) even for small counts where a Pearson z is badly skewed.
    """
    E = np.maximum(E, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if binomial:
            rest = np.maximum(D - E, 1e-300)
            dev = 2.0 * (xlogy(O, O / E) + xlogy(D - O, np.maximum(D - O, 0.0) / rest))
        else:
            dev = 2.0 * (xlogy(O, O / E) - (O - E))
    return np.maximum(np.nan_to_num(dev, nan=0.0, posinf=np.inf), 0.0)


def _profile_z(O: float, E: float, D: float, binomial: bool, scale: float,
               var_log_e: float) -> float:
    """Signed root of ``min_u dev(O, E e^u) / scale + u^2 / var_log_e``.

    The window's test statistic with the baseline's own uncertainty profiled
    out: sampling noise by the deviance (near-normal even for few events),
    the baseline's error as log-normal with variance ``var_log_e`` (delta
    method). For large counts it is ``(O - E) / sqrt(scale E + E^2 var_log_e)``;
    for few events it stays honest when the baseline itself is very uncertain
    (an extrapolated trend on 30 events), where a linear delta method is not.
    ``scale`` is phi times the autocorrelation inflation.
    """
    if E <= 0 or scale <= 0:
        return 0.0
    if var_log_e <= 0:
        return float(np.sign(O - E) * np.sqrt(float(_deviance(O, E, D, binomial)) / scale))
    u_cap = np.log(D / E) - 1e-9 if binomial else np.inf

    def slope(u):  # derivative of the objective in u; increasing (convex objective)
        e = E * np.exp(u)
        d_dev = 2.0 * D * (e - O) / max(D - e, 1e-300) if binomial else 2.0 * (e - O)
        return d_dev / scale + 2.0 * u / var_log_e

    lo, hi = (np.log(O / E), 0.0) if O > 0 else (-50.0, 0.0)
    lo, hi = min(lo, hi), min(max(lo, hi), u_cap)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
    u = 0.5 * (lo + hi)
    h = float(_deviance(O, E * np.exp(u), D, binomial)) / scale + u * u / var_log_e
    return float(np.sign(O - E) * np.sqrt(max(h, 0.0)))


def _continuity(O, E, cc):
    """Move a count ``cc`` (0.5 for integer data) towards its expectation.

    The signed root deviance of a Poisson count overstates tails at small
    counts -- O = 0 when 9.3 are expected is z = 4.31 uncorrected, 3.83
    corrected, 3.74 exact -- which matters when thousands of windows are scanned.
    """
    return O + np.clip(E - O, -cc, cc) if cc else O


def _segment_z2(pred, y, den, present, starts, ends, min_length, binomial, cc=0.0):
    """``Z**2 * phi`` (the segment's deviance) for every (start, end) pair."""
    def cums(x):
        return np.concatenate(([0.0], np.cumsum(np.where(present, x, 0.0))))

    def seg(c):
        return c[ends + 1][None, :] - c[starts][:, None]

    O, E = seg(cums(y)), seg(cums(pred.mu))
    D = seg(cums(den)) if binomial else None
    ok = ((ends[None, :] >= starts[:, None] + min_length - 1) & present[starts][:, None]
          & present[ends][None, :] & (E > 0))
    return np.where(ok, _deviance(_continuity(O, E, cc), E, D, binomial), -np.inf)


def _choose_window(pred: _Prediction, fit: _Fit, y, den, present, starts, last, binomial, cfg,
                   cc=0.0):
    ends = np.arange(starts[0], last + 1)
    z2 = _segment_z2(pred, y, den, present, starts, ends, cfg.min_length, binomial, cc)
    if not np.isfinite(z2).any():
        return None
    i, j = np.unravel_index(np.argmax(z2), z2.shape)
    col = z2[:, -1]  # windows that run to the last bucket
    ip = int(np.argmax(col))
    if not np.isfinite(col[ip]):
        return int(starts[i]), int(ends[j])
    if j == len(ends) - 1:
        return int(starts[i]), last
    gain = (z2[i, j] - col[ip]) / (fit.phi * _long_run_inflation(fit))
    if gain > cfg.end_penalty:
        return int(starts[i]), int(ends[j])
    return int(starts[ip]), last


def _onset_within(pred: _Prediction, y, den, present, a, b, min_length, binomial, cc=0.0):
    starts = np.arange(a, b + 1)
    z2 = _segment_z2(pred, y, den, present, starts, np.array([b]), min_length, binomial,
                     cc)[:, 0]
    if not np.isfinite(z2).any():
        return a
    return int(starts[np.argmax(z2)])


# --------------------------------------------------------------------------- detector
def _onset_set(pred: _Prediction, fit: _Fit, y, den, present, lo, onset, b, min_length,
               binomial, cc=0.0, level: float = 0.95):
    """The onsets a likelihood-ratio test does not reject, as ``(first, last)``.

    With the window's end fixed, the profile of the segment deviance over its
    start is the likelihood of the change point's location; the set of starts
    within ``c`` of the best (scaled by ``phi`` and the long-run autocorrelation
    inflation) is a confidence set for the onset (Siegmund 1988, "Confidence
    sets in change-point problems", Int. Statist. Rev. 56). The location is not
    a regular parameter, so ``c`` is not a chi-square quantile: the likelihood
    ratio of a change point behaves like twice the maximum of a two-sided random
    walk with negative drift (Hinkley 1970), whose tail is ``2 exp(-c / 2)``, so
    ``c = 2 log(2 / (1 - level))`` (7.4 at 95%). It is
    wide where the first hours after the onset carry few events (a night), and
    tells a caller whether another estimate of the onset (a slice's, a
    change's time) is compatible with this series.
    """
    lo = int(max(lo, 0))
    hi = int(b - min_length + 1)
    if hi < lo:
        return onset, onset
    starts = np.arange(lo, hi + 1)
    z2 = _segment_z2(pred, y, den, present, starts, np.array([b]), min_length, binomial,
                     cc)[:, 0]
    if not np.isfinite(z2).any():
        return onset, onset
    scale = fit.phi * _long_run_inflation(fit)
    best = float(z2[starts == onset][0]) if np.any(starts == onset) else float(np.nanmax(z2))
    ok = np.isfinite(z2) & (best - z2 <= 2.0 * np.log(2.0 / (1.0 - level)) * scale)
    ok[starts == onset] = True
    # the contiguous run of accepted starts around the estimate
    k = int(np.flatnonzero(starts == onset)[0]) if np.any(starts == onset) else int(np.argmax(z2))
    i0 = k
    while i0 > 0 and ok[i0 - 1]:
        i0 -= 1
    i1 = k
    while i1 < len(ok) - 1 and ok[i1 + 1]:
        i1 += 1
    return int(starts[i0]), int(starts[i1])


def _single_threaded_blas():
    """Limit BLAS to one thread while detecting, when ``threadpoolctl`` is installed.

    The matrices here are small (hundreds x tens); a multi-threaded BLAS spends
    more time waking and spinning threads than computing, and on a busy machine
    a call took 3 s instead of 0.1 s. Without threadpoolctl nothing changes.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # optional: only a speed-up
            return contextlib.nullcontext()
        # found once per process: listing the loaded libraries took 12 ms a call,
        # 0.5 s of an incident whose slice scan detects 40 times
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


#: The process's threadpoolctl controller (its BLAS libraries, listed once).
_BLAS_CONTROLLER = None


def _first_present(present, lo, hi):
    idx = np.flatnonzero(present[lo:hi + 1])
    return None if len(idx) == 0 else lo + int(idx[0])


def _last_present(present, lo, hi):
    idx = np.flatnonzero(present[lo:hi + 1])
    return None if len(idx) == 0 else lo + int(idx[-1])


def _to_ts(value, name) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"window {name} {value!r} is not a timestamp; pass ISO strings or "
                         "pd.Timestamp values, e.g. ('2026-11-18T14:00Z', '2026-11-20T23:00Z')"
                         ) from exc
    if pd.isna(ts):
        raise UsageError(f"window {name} is missing; pass (start, end)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class SeasonalDetector:
    """Seasonal quasi-likelihood baseline plus segment scan (module docstring).

    Registered as ``"seasonal"``; called by :func:`workbench.detect.detect_divergence`.
    """

    name = "seasonal"

    def detect(self, frame: pd.DataFrame, *, kind: str, better: str, grain: pd.Timedelta,
               window=None, config: DetectConfig) -> DivergenceResult:
        """Detect on a normalized frame (complete grid, ``num``/``den``, NaN = missing)."""
        with _single_threaded_blas():
            return self._detect(frame, kind=kind, better=better, grain=grain, window=window,
                                config=config)

    def _detect(self, frame, *, kind, better, grain, window, config) -> DivergenceResult:
        cfg = config
        index = frame.index
        n = len(index)
        y_raw = frame["num"].to_numpy(dtype=float)
        den_raw = frame["den"].to_numpy(dtype=float)
        present = ~np.isnan(y_raw)
        if not present.any():
            raise UsageError("series has no non-missing bucket")
        y = np.where(present, y_raw, 0.0)
        # For a sum the unit of exposure is the bucket itself, known even when missing.
        den = np.ones(n) if kind == "sum" else den_raw
        binomial = kind == "ratio" and bool(np.all(y_raw[present] <= den_raw[present]))
        cc = 0.5 if np.all(y_raw[present] == np.round(y_raw[present])) else 0.0
        design = _design(index, grain)
        first, last = int(np.flatnonzero(present)[0]), int(np.flatnonzero(present)[-1])
        guard = cfg.guard
        buckets = lambda td: int(np.ceil(td / grain))  # noqa: E731
        iterations = 0

        error = None  # residual correlation (c, a), estimated once per detection
        staged_steps, staged_set = 0, None

        def fit_excluding(a, b, *, before_only=False):
            nonlocal error
            keep = present.copy()
            lo = max(a - guard, 0)
            if before_only or b >= last:
                keep[lo:] = False
            else:
                keep[lo:b + 1] = False
            idx = np.flatnonzero(keep)
            if len(idx) < 2 or (index[idx[-1]] - index[idx[0]]) < min(cfg.min_history, 2 * _DAY):
                raise UsageError(
                    "not enough history outside the window to fit a baseline: the fit needs "
                    f"at least {min(cfg.min_history, 2 * _DAY)} of data; series spans "
                    f"{index[last] - index[first]} from {index[first].isoformat()}")
            fit = _fit(y, den, design, idx, index, binomial, cfg, error)
            error = (fit.acf_c, fit.acf_a)
            return fit

        if window is not None:
            if not isinstance(window, (tuple, list)) or len(window) != 2:
                raise UsageError(f"window must be a (start, end) pair; got {window!r}")
            ws, we = _to_ts(window[0], "start"), _to_ts(window[1], "end")
            if we <= ws:
                raise UsageError(f"window end {we.isoformat()} is not after its start "
                                 f"{ws.isoformat()}; the window is [start, end)")
            a = int(index.searchsorted(ws, side="left"))
            b = int(index.searchsorted(we, side="left")) - 1  # half-open [ws, we)
            a = _first_present(present, a, min(b, n - 1)) if a <= b and a < n else None
            b = _last_present(present, a, b) if a is not None else None
            if a is None or b is None:
                raise UsageError(f"window {ws.isoformat()}..{we.isoformat()} holds no data; the "
                                 f"series has data from {index[first].isoformat()} to "
                                 f"{index[last].isoformat()}")
            pre = np.flatnonzero(present[:max(a - guard, 0)])
            before_only = len(pre) > 1 and index[pre[-1]] - index[pre[0]] >= cfg.min_history
            fit = fit_excluding(a, b, before_only=before_only)
            pred = _predict(fit, design, y, den, present, binomial)
            onset = _onset_within(pred, y, den, present, a, b, cfg.min_length, binomial, cc)
            stats = self._window_stats(pred, fit, design, y, den, present, a, b, binomial, cc)
            p_value = float(2.0 * ndtr(-abs(stats["z"])))
            n_scanned, searched = 0, False
        else:
            scan_from = max(first + buckets(cfg.min_history), n - buckets(cfg.scan))
            scan_from = _first_present(present, scan_from, last) if scan_from <= last else None
            if scan_from is None:
                raise UsageError(
                    f"series spans {index[last] - index[first]}, too short to scan for a "
                    f"divergence: onsets need min_history={cfg.min_history} of history "
                    "before them; pass config=DetectConfig(min_history=...) with a shorter "
                    "duration or give more history")
            starts = np.arange(scan_from, last + 1)
            n_scanned = len(starts)
            fit = fit_excluding(scan_from, last, before_only=True)
            chosen = None
            for iterations in range(1, cfg.max_iterations + 1):
                pred = _predict(fit, design, y, den, present, binomial)
                new = _choose_window(pred, fit, y, den, present, starts, last, binomial, cfg,
                                     cc)
                if new is None or new == chosen:
                    break
                chosen = new
                fit = fit_excluding(*chosen)
            else:
                pred = _predict(fit, design, y, den, present, binomial)
            if chosen is None:
                chosen = (scan_from, last)
                fit = fit_excluding(*chosen)
                pred = _predict(fit, design, y, den, present, binomial)
            onset, b = chosen
            a = onset
            stats = self._window_stats(pred, fit, design, y, den, present, a, b, binomial, cc)
            p_local = 2.0 * ndtr(-abs(stats["z"]))
            m = cfg.scan_tests_per_bucket * n_scanned
            p_value = float(-np.expm1(m * np.log1p(-min(p_local, 1.0 - 1e-16))))
            searched = True
            if p_value < cfg.alpha and cfg.staged_lookback > pd.Timedelta(0):
                # one earlier step at most: a third, weaker one is dated too loosely by
                # the data (a rollout's first small step is for the change log to date)
                step = self._earlier_step(fit_excluding, design, y, den, present, a, b,
                                          max(first + buckets(cfg.min_history), 0),
                                          buckets(cfg.staged_lookback), binomial, cc, cfg,
                                          float(np.sign(stats["z"])))
                if step is not None:
                    a = onset = step[0]
                    staged_set = step[1:]
                    staged_steps += 1
                    fit = fit_excluding(a, b)
                    pred = _predict(fit, design, y, den, present, binomial)
                    stats = self._window_stats(pred, fit, design, y, den, present, a, b,
                                               binomial, cc)

        trend_check = None
        if searched and p_value < cfg.alpha and cfg.trend and 1 in design.group[fit.cols]:
            trend_check = _trend.trend_check(self, fit, y, den, present, design, index, binomial,
                                             cfg, cc, error, a, b, last, n_scanned, stats["z"],
                                             kit=(_Design, _fit, _predict))
            p_value = max(p_value, trend_check["p"])
        significant = bool(p_value < cfg.alpha)
        set_lo = max(a - buckets(3 * _DAY), first) if window is None else a
        s0, s1 = staged_set or _onset_set(pred, fit, y, den, present, set_lo, onset, b,
                                          cfg.min_length, binomial, cc)
        obs, base = stats["observed"], stats["baseline"]
        below = obs < base
        direction = "bad" if (below == (better == "higher")) else "good"
        rel = obs / base - 1.0 if base > 0 else (0.0 if obs == base else float("inf"))
        expected = self._expected_frame(pred, fit, design, y_raw, den_raw, den, present,
                                        binomial, kind, cfg, index)
        params = {
            "kind": kind,
            "better": better,
            "grain": grain,
            "window": [index[a], index[b]],
            "onset_estimate": index[onset],
            "onset_set": [index[s0], index[s1]],
            "earlier_steps": staged_steps,
            "searched": searched,
            "n_scanned_onsets": n_scanned,
            "scan_start": index[starts[0]] if searched else None,
            "iterations": iterations,
            "buckets_in_window": int(b - a + 1),
            "missing_in_window": int(np.sum(~present[a:b + 1])),
            "missing_buckets": int(np.sum(~present)),
            "sum_num": stats["sum_num"],
            "sum_expected_num": stats["sum_expected"],
            "sum_den": stats["sum_den"],
            "sd_sampling": stats["sd_sampling"],
            "sd_baseline": stats["sd_baseline"],
            "phi": fit.phi,
            "acf_lag1": fit.acf_c * fit.acf_a,
            "acf_decay": fit.acf_a,
            "long_run_inflation": _long_run_inflation(fit),
            "variance": "binomial" if binomial else "poisson",
            "fit_buckets": fit.n_fit,
            "fit_range": [index[fit.fit_start], index[fit.fit_end]],
            "baseline_terms": [design.names[c] for c in fit.cols],
            "config": cfg.to_dict(),
            "trend_check": trend_check,
        }
        return DivergenceResult(
            significant=significant,
            onset=index[onset] if significant else None,
            end=index[b] if significant else None,
            baseline=float(base),
            observed=float(obs),
            relative_change=float(rel),
            direction=direction,
            score=float(stats["z"]),
            p_value=p_value,
            method=self.name,
            params=params,
            expected=expected,
        )

    def _earlier_step(self, fit_excluding, design, y, den, present, a, b, earliest, lookback,
                      binomial, cc, cfg, sign) -> tuple[int, int, int] | None:
        """Start of an earlier step adjacent to the window ``[a, b]`` and the 95%
        set of that start (the step's segment ``[start, a - 1]`` profiled), or None.

        Binary segmentation (Vostrikova 1981) on the span before the onset: the
        baseline is fitted on the history before ``a - lookback`` (so neither
        step bends it), the segments ``[s, a - 1]`` are scanned, and the best
        one counts when it moves the same way as the window and its z is
        significant after a Sidak correction over the starts tried (the same
        calibration as the main scan).
        """
        lo = max(a - lookback, earliest)
        if a - lo < max(cfg.min_length, 2):
            return None
        try:
            fit = fit_excluding(lo, b, before_only=True)
        except UsageError:
            return None
        pred = _predict(fit, design, y, den, present, binomial)
        starts = np.arange(lo, a)
        z2 = _segment_z2(pred, y, den, present, starts, np.array([a - 1]), cfg.min_length,
                         binomial, cc)[:, 0]
        if not np.isfinite(z2).any():
            return None
        s = int(starts[int(np.argmax(z2))])
        st = self._window_stats(pred, fit, design, y, den, present, s, a - 1, binomial, cc)
        if np.sign(st["z"]) != sign:
            return None
        p_local = 2.0 * ndtr(-abs(st["z"]))
        m = cfg.scan_tests_per_bucket * len(starts)
        p = float(-np.expm1(m * np.log1p(-min(p_local, 1.0 - 1e-16))))
        if p >= cfg.alpha:
            return None
        return (s, *_onset_set(pred, fit, y, den, present, lo, s, a - 1, cfg.min_length,
                               binomial, cc))

    @staticmethod
    def _window_stats(pred, fit, design, y, den, present, a, b, binomial, cc) -> dict:
        sl = slice(a, b + 1)
        pm = present[sl]
        mu = np.where(pm, pred.mu[sl], 0.0)
        E, O = float(mu.sum()), float(y[sl][pm].sum())
        D = float(den[sl][pm].sum())
        L = int(pm.sum())
        sum_v = float(pred.v[sl].sum())
        var_s = fit.phi * sum_v * float(_inflation(fit, L))
        g = (mu[:, None] * design.X[sl][:, fit.cols]).sum(axis=0)
        var_b = float(g @ fit.cov @ g)
        z = _profile_z(float(_continuity(O, E, cc)), E, D, binomial,
                       var_s / sum_v if sum_v > 0 else fit.phi,
                       var_b / (E * E) if E > 0 else 0.0)
        return {"z": z, "observed": O / D, "baseline": E / D, "sum_num": O,
                "sum_expected": E, "sum_den": D, "sd_sampling": float(np.sqrt(var_s)),
                "sd_baseline": float(np.sqrt(var_b))}

    @staticmethod
    def _expected_frame(pred, fit, design, y_raw, den_raw, den, present, binomial, kind, cfg,
                        index) -> pd.DataFrame:
        zq = float(ndtri(0.5 + cfg.interval / 2.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            d = den if kind == "sum" else den_raw
            observed = y_raw / d
            v = _variance(pred.mu, d, binomial)
            var_rate = (fit.phi * v + pred.mu ** 2 * pred.h) / d ** 2
            sd = np.sqrt(var_rate)
        expected = pred.rate
        return pd.DataFrame(
            {"observed": observed, "expected": expected,
             "lower": np.maximum(expected - zq * sd, 0.0), "upper": expected + zq * sd},
            index=pd.DatetimeIndex(index, name="ts"))
