"""Seasonal quasi-likelihood baseline with a segment scan: the ``"seasonal"`` detector.

The baseline's design, fit, error model and prediction (steps 1 and 2) live in
:mod:`workbench.detect._baseline`, which describes and cites them; this module
runs the loop that refits that baseline around the scan (steps 3 to 6).

Method
------
1. **Baseline.** A robust quasi-likelihood GLM of the bucket's expected
   numerator (log-linear trend, hour-of-day, day-of-week and weekend-shape
   terms; binomial or Poisson variance times ``phi``), fitted by IRLS with past
   incidents down-weighted: the outbreak-detection design of Farrington et al.
   (1996) moved to hourly buckets (:mod:`workbench.detect._baseline`).
2. **Error model.** Residuals are over-dispersed white noise plus AR(1),
   ``acf(j) = c a^j``, fitted by moments corrected for the fit, with the
   matching sandwich ``Cov(beta)`` (:mod:`workbench.detect._baseline`).
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
Farrington, C. P., Andrews, N. J., Beale, A. D. and Catchpole, M. A. (1996). A
statistical algorithm for the early detection of outbreaks of infectious
disease. JRSS A 159, 547-563.
Kulldorff, M. (1997). A spatial scan statistic. Commun. Statist. Theory Meth.
26, 1481-1496.
Levin, B. and Kline, J. (1985). The cusum test of homogeneity with an
application in spontaneous abortion epidemiology. Stat. Med. 4, 469-488.
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


import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from workbench.errors import UsageError

from . import _trend
from ._baseline import (_DAY, _Fit, _Prediction, _deviance, _design, _fit, _inflation,
                        _long_run_inflation, _predict, _single_threaded_blas, _variance)
from .config import DetectConfig
from .result import DivergenceResult

__all__ = ["SeasonalDetector"]


# --------------------------------------------------------------------------- scan
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


def _start_profile(pred, y, den, present, starts, end, min_length, binomial, cc):
    """The segment deviance of each start in ``starts`` with the end fixed at ``end``."""
    return _segment_z2(pred, y, den, present, starts, np.array([end]), min_length, binomial,
                       cc)[:, 0]


def _onset_within(pred: _Prediction, y, den, present, a, b, min_length, binomial, cc=0.0):
    starts = np.arange(a, b + 1)
    z2 = _start_profile(pred, y, den, present, starts, b, min_length, binomial, cc)
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
    z2 = _start_profile(pred, y, den, present, starts, b, min_length, binomial, cc)
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
            p_value = _trend._scan_p(stats["z"], cfg.scan_tests_per_bucket * n_scanned)
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
                                             cfg, cc, error, a, b, last, n_scanned, stats["z"])
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
        z2 = _start_profile(pred, y, den, present, starts, a - 1, cfg.min_length, binomial, cc)
        if not np.isfinite(z2).any():
            return None
        s = int(starts[int(np.argmax(z2))])
        st = self._window_stats(pred, fit, design, y, den, present, s, a - 1, binomial, cc)
        if np.sign(st["z"]) != sign:
            return None
        if _trend._scan_p(st["z"], cfg.scan_tests_per_bucket * len(starts)) >= cfg.alpha:
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
