"""Does a scanned divergence hold against baselines that read the trend differently?

Why
---
A scanned window is judged against a trend extrapolated over it, the least
reliable part of a forecast (Hyndman and Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., 2021, sec. 8.2, on why damped trends
forecast better than linear ones). Two readings of the history go wrong in
opposite ways:

- a level shift inside the history reads as a trend and is carried on for days
  (a flat last week then looks short): the baseline *without* a trend, the
  fully damped end of the range, does not extrapolate it;
- a slice whose share falls linearly (an old app version being replaced) bends
  away from a log-linear trend fitted on three weeks: its log falls faster as
  the share shrinks, and the last days look short of the long-run trend. The
  baseline whose trend may bend over the *recent* history (a local linear
  trend, the reading Holt's method weights towards, sec. 8.2; here a linear
  spline with one knot, the seasonal terms still fitted on all the history)
  follows the bend. It is an
  alternative only for a window that goes the way the trend went (a bump
  against a falling series is no bend of it).

Method
------
Both alternatives are fitted on the same history outside the window; the
window's statistic is recomputed against each, Sidak-corrected for the scan
as the main test is. The largest p-value counts (the divergence must hold
under every reading), and a ``z`` of the other sign gives 1. A real step is
not explained by either: the recent history ends before it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.special import ndtr

from ._baseline import _DAY, _WEEK, _Design, _fit, _predict

#: Days before the window from which the local-trend baseline's trend may bend
RECENT_DAYS = 10


def _scan_p(z: float, tests: float) -> float:
    """Sidak-corrected two-sided p-value of ``z`` over ``tests`` looks.

    The scan's significance (step 6 of :mod:`workbench.detect.seasonal`, which
    uses it for its main and its earlier-step windows too).
    """
    return float(-np.expm1(tests * np.log1p(-min(2.0 * ndtr(-abs(z)), 1.0 - 1e-16))))


def trend_check(det, fit, y, den, present, design, index, binomial, cfg, cc, error, a, b, last,
                n_scanned, z) -> dict:
    """The scanned window's p-value against the no-trend and the local-trend baselines.

    Parameters
    ----------
    det:
        The :class:`~workbench.detect.seasonal.SeasonalDetector` (its window statistics).
    fit:
        The main baseline's fit (its trend's sign).
    y, den, present, design, index, binomial, cfg, cc, error:
        The detection's series, design and settings.
    a, b, last:
        The window's first and last bucket, and the series' last one.
    n_scanned, z:
        Windows the scan looked at, and the window's ``z`` against the main baseline.

    Returns
    -------
    dict
        ``p`` (the largest), and each alternative's ``z`` and ``p``.
    """
    lo = max(a - cfg.guard, 0)
    keep = present.copy()
    keep[lo:(None if b >= last else b + 1)] = False
    tests = cfg.scan_tests_per_bucket * n_scanned
    out = {}
    # the local trend: the same baseline whose trend may bend RECENT_DAYS before the
    # window (a linear spline, hinge at that day), seasonal terms fitted on all history
    bend = np.clip((index - (index[lo] - RECENT_DAYS * _DAY)) / _WEEK, 0.0, None)
    bent = _Design(np.column_stack([design.X, np.asarray(bend, dtype=float)]),
                   np.append(design.group, 1), (*design.names, "trend_bend_per_week"))
    fits = {"without_trend": (keep, replace(cfg, trend=False), design),
            "recent_trend": (keep, cfg, bent)}
    slope = fit.beta[list(design.group[fit.cols]).index(1)]
    if np.sign(slope) != np.sign(z):  # the window does not go the way the series went
        del fits["recent_trend"]
    for name, (mask, c, d) in fits.items():
        idx = np.flatnonzero(mask)
        if len(idx) < 2 or index[idx[-1]] - index[idx[0]] < 2 * _DAY:
            continue
        f = _fit(y, den, d, idx, index, binomial, c, error)
        st = det._window_stats(_predict(f, d, y, den, present, binomial), f, d,
                               y, den, present, a, b, binomial, cc)
        p = 1.0 if np.sign(st["z"]) != np.sign(z) else _scan_p(st["z"], tests)
        out[f"z_{name}"], out[f"p_{name}"] = float(st["z"]), p
    out["p"] = max([v for k, v in out.items() if k.startswith("p_")], default=0.0)
    return out
