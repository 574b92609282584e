"""Tuning knobs of divergence detection (:class:`DetectConfig`).

The defaults are the ones measured by ``tests/detect/simulate.py`` (hourly
series, 21 days of history); change one with a reason and re-run that script.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from workbench.errors import UsageError

__all__ = ["DetectConfig"]


def _as_timedelta(name: str, value) -> pd.Timedelta:
    try:
        td = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"DetectConfig.{name} must be a duration such as '7D' or "
                         f"pd.Timedelta('7D'); got {value!r}") from exc
    if pd.isna(td) or td < pd.Timedelta(0):
        raise UsageError(f"DetectConfig.{name} must be a non-negative duration; got {value!r}")
    return td


@dataclass(frozen=True)
class DetectConfig:
    """Settings of :func:`workbench.detect.detect_divergence`.

    Parameters
    ----------
    alpha : float
        A divergence is ``significant`` when its p-value (corrected for scanning
        many windows when no ``window`` is given) is below ``alpha``.
    interval : float
        Coverage of the per-bucket prediction band in ``DivergenceResult.expected``.
    scan : duration
        How far back from the last bucket onsets are searched when no ``window``
        is given. Seven days puts every hour of the week in reach. A longer scan
        means more windows tested, hence a higher bar for significance.
    min_history : duration
        History a candidate onset needs before it; onsets earlier than
        ``first bucket + min_history`` are not searched.
    weekly_min_history : duration
        Day-of-week effects are fitted only when the baseline's fit data spans
        at least this long (with less, one day per weekday is too little).
    guard : int
        Buckets before a candidate onset also left out of the baseline fit, so a
        ramp that starts slightly before the detected onset does not bend it.
    min_length : int
        Shortest divergent window, in buckets.
    max_iterations : int
        Rounds of "fit baseline without the window, re-scan" before stopping.
    end_penalty : float
        Extra evidence (in squared z, after correcting for autocorrelation) a
        window ending before the last bucket needs over one running to the end.
        A bounded episode is reported only when the series demonstrably returns
        to the baseline; BIC-like, about ``2 log(number of candidate ends)``.
    robust_c : float
        Deviance residual (in standard deviations) from which a bucket gets no
        weight in the baseline fit; the weight is 1 up to half of it and falls
        smoothly in between, so past incidents do not bend the baseline.
    ridge : float
        Prior precision on the seasonal coefficients (log scale): keeps empty or
        all-zero hours of a low-volume series finite, negligible at volume.
    trend : bool
        Fit a log-linear trend in the baseline.
    trend_prior_sd : float
        Prior standard deviation of the trend, in log change per week (0.1 is
        about 10% a week; 0 for no prior). Shrinks a trend the data barely
        support -- two weeks of a low-volume series easily show a spurious 20%
        a week, extrapolated days ahead -- and leaves a well-measured one alone.
    staged_lookback : duration
        How far before a detected onset an earlier, smaller step of the same
        divergence is looked for (a staged rollout: 10% then 50% then 100%). The
        scan finds the largest step; binary segmentation on the span before it
        finds an earlier one adjacent to it, in the same direction, significant
        on its own (Sidak-corrected over the starts tried). ``0`` turns it off.
    scan_tests_per_bucket : float
        Effective number of independent tests per scanned bucket used in the
        Sidak correction ``p = 1 - (1 - p_window) ** (k * n_scanned)``, calibrated
        on simulated null series (``tests/detect/simulate.py --calibrate``). Over
        2,000 quiet series (ratio and sum, 5 to 20,000 per hour, AR(1) model
        error) k = 0.35 gives exactly 5% false alarms, k = 1 gives 3.6% and the
        default k = 2 gives 2.7%; on fresh series at 100 to 20,000 per hour, k = 2
        gave 3.2%, 4.2% and 4.4% for scans of 3, 7 and 14 days (500 each), so
        the rate barely depends on the scan length. The tail is heavy: the
        margin costs little power (the bar on |score| is 3.8 instead of 3.6).
    """

    alpha: float = 0.05
    interval: float = 0.95
    scan: pd.Timedelta = pd.Timedelta("7D")
    min_history: pd.Timedelta = pd.Timedelta("7D")
    weekly_min_history: pd.Timedelta = pd.Timedelta("10D")
    guard: int = 2
    min_length: int = 1
    max_iterations: int = 4
    end_penalty: float = 12.0
    robust_c: float = 6.0
    ridge: float = 1.0
    trend: bool = True
    trend_prior_sd: float = 0.1
    scan_tests_per_bucket: float = 2.0
    staged_lookback: pd.Timedelta = pd.Timedelta("3D")

    def __post_init__(self):
        for name in ("scan", "min_history", "weekly_min_history", "staged_lookback"):
            object.__setattr__(self, name, _as_timedelta(name, getattr(self, name)))
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"DetectConfig.alpha must be in (0, 1); got {self.alpha!r}")
        if not 0.0 < self.interval < 1.0:
            raise UsageError(f"DetectConfig.interval must be in (0, 1); got {self.interval!r}")
        for name in ("guard", "min_length", "max_iterations"):
            value = getattr(self, name)
            low = 0 if name == "guard" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UsageError(f"DetectConfig.{name} must be an integer >= {low}; got {value!r}")
        for name in ("end_penalty", "ridge", "trend_prior_sd"):
            if not getattr(self, name) >= 0:
                raise UsageError(f"DetectConfig.{name} must be >= 0; got {getattr(self, name)!r}")
        for name in ("robust_c", "scan_tests_per_bucket"):
            if not getattr(self, name) > 0:
                raise UsageError(f"DetectConfig.{name} must be > 0; got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """JSON-safe settings (durations as ISO 8601 strings)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, pd.Timedelta) else value
        return out
