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
  baseline fitted on the *recent* history only (a local linear trend, the
  reading Holt's method weights towards, sec. 8.2) follows the bend.

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

#: Days of history before the window that the local-trend baseline is fitted on
#: (ten: enough for the weekday terms, cf. ``DetectConfig.weekly_min_history``)
RECENT_DAYS = 10


def _scan_p(z: float, tests: float) -> float:
    """Sidak-corrected two-sided p-value of ``z`` over ``tests`` looks."""
    return float(-np.expm1(tests * np.log1p(-min(2.0 * ndtr(-abs(z)), 1.0 - 1e-16))))


def trend_check(det, y, den, present, design, index, binomial, cfg, cc, error, a, b, last,
                n_scanned, z) -> dict:
    """The scanned window's p-value against the no-trend and the local-trend baselines.

    Parameters
    ----------
    det:
        The :class:`~workbench.detect.seasonal.SeasonalDetector` (its window statistics).
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
    from .seasonal import _DAY, _fit, _predict

    keep = present.copy()
    keep[max(a - cfg.guard, 0):(None if b >= last else b + 1)] = False
    tests = cfg.scan_tests_per_bucket * n_scanned
    out = {}
    recent = keep & (np.arange(len(keep)) < max(a - cfg.guard, 0)) & \
        (index >= index[max(a - cfg.guard, 0)] - RECENT_DAYS * _DAY)
    # the weekday terms stay in the recent fit (each weekday is seen at least once):
    # without them a weekly pattern would pass for noise and hide any divergence
    fits = {"without_trend": (keep, replace(cfg, trend=False)),
            "recent_trend": (recent, replace(cfg, weekly_min_history=(RECENT_DAYS - 3) * _DAY))}
    for name, (mask, c) in fits.items():
        idx = np.flatnonzero(mask)
        if len(idx) < 2 or index[idx[-1]] - index[idx[0]] < 2 * _DAY:
            continue
        f = _fit(y, den, design, idx, index, binomial, c, error)
        st = det._window_stats(_predict(f, design, y, den, present, binomial), f, design,
                               y, den, present, a, b, binomial, cc)
        p = 1.0 if np.sign(st["z"]) != np.sign(z) else _scan_p(st["z"], tests)
        out[f"z_{name}"], out[f"p_{name}"] = float(st["z"]), p
    out["p"] = max([v for k, v in out.items() if k.startswith("p_")], default=0.0)
    return out
