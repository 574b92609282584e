"""The seasonal detector's baseline: design, robust quasi-likelihood fit, error model, prediction.

Used by :mod:`workbench.detect.seasonal` (its steps 1 and 2) and
:mod:`workbench.detect._trend` (the alternative baselines of a scanned window);
it imports neither.

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

References
----------
Cantoni, E. and Ronchetti, E. (2001). Robust inference for generalized linear
models. JASA 96, 1022-1030.
Farrington, C. P., Andrews, N. J., Beale, A. D. and Catchpole, M. A. (1996). A
statistical algorithm for the early detection of outbreaks of infectious
disease. JRSS A 159, 547-563.
McCullagh, P. and Nelder, J. A. (1989). Generalized Linear Models, 2nd ed.
Noufaily, A. et al. (2013). An improved algorithm for outbreak detection in
multiple surveillance systems. Stat. Med. 32, 1206-1222.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import xlogy

from .config import DetectConfig

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


# --------------------------------------------------------------------------- deviance
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
