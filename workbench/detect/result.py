"""The frozen result of :func:`workbench.detect.detect_divergence`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from .._format import iso as _iso

__all__ = ["DivergenceResult", "json_safe"]

EXPECTED_COLUMNS = ("observed", "expected", "lower", "upper")


def json_safe(value):
    """Turn numpy / pandas scalars and containers into JSON-serializable Python.

    Non-finite floats become ``None`` (JSON has no NaN), timestamps become ISO
    8601 strings in UTC with a ``Z`` suffix, durations ISO 8601 durations.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return _iso(value)
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if value is pd.NaT:
        return None
    return str(value)


@dataclass(frozen=True, eq=False)  # eq/hash by identity: it holds a DataFrame
class DivergenceResult:
    """Whether a metric diverged from its baseline, when, by how much, how surely.

    Attributes
    ----------
    significant : bool
        ``p_value < config.alpha``.
    onset, end : pandas.Timestamp or None
        First and last bucket of the divergent window; ``None`` when not
        significant (the candidate window is still in ``params["window"]``).
    baseline : float
        Metric value the baseline expects over the window, from sums:
        ``sum(expected num) / sum(den)`` (for a sum metric ``den`` is 1 per
        bucket, so this is the expected mean per bucket).
    observed : float
        ``sum(num) / sum(den)`` over the window.
    relative_change : float
        ``observed / baseline - 1``.
    direction : {"bad", "good"}
        Whether the move is bad given the metric's ``better``.
    score : float
        Signed z statistic of the window (negative: below the baseline). It
        combines sampling noise, over-dispersion, autocorrelation and the
        baseline's own uncertainty, so it is comparable across metrics and
        slices; rank by ``abs(score)``.
    p_value : float
        Two-sided; Sidak-corrected for the number of windows scanned when the
        window was searched for, uncorrected when it was given.
    method : str
        Name of the detector that produced the result.
    params : dict
        Details (``to_dict`` makes them JSON-safe): ``window`` (first and last
        bucket of the window measured, inclusive; set even when not
        significant), ``searched`` (False when a window was given), sums
        (``sum_num``, ``sum_expected_num``, ``sum_den``), the two parts of the
        standard deviation (``sd_sampling``, ``sd_baseline``), fit diagnostics
        (over-dispersion ``phi``, ``acf_lag1``, ``long_run_inflation``,
        ``baseline_terms``, ``fit_range``) and the config.
    expected : pandas.DataFrame
        For every bucket of the series (index ``ts``): ``observed``,
        ``expected``, ``lower``, ``upper`` in metric units (the baseline and its
        prediction band at ``config.interval``).
    """

    significant: bool
    onset: pd.Timestamp | None
    end: pd.Timestamp | None
    baseline: float
    observed: float
    relative_change: float
    direction: Literal["bad", "good"]
    score: float
    p_value: float
    method: str
    params: dict = field(default_factory=dict)
    expected: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(EXPECTED_COLUMNS)))

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """``(onset, end)`` when significant, else ``None``."""
        if self.onset is None or self.end is None:
            return None
        return (self.onset, self.end)

    def to_dict(self, *, include_expected: bool = False) -> dict:
        """JSON-safe summary; timestamps as ISO 8601 UTC strings.

        Parameters
        ----------
        include_expected : bool
            Also include ``expected`` as a list of records (one per bucket).
        """
        out = {
            "significant": bool(self.significant),
            "onset": _iso(self.onset),
            "end": _iso(self.end),
            "window": [_iso(self.onset), _iso(self.end)] if self.window else None,
            "baseline": json_safe(self.baseline),
            "observed": json_safe(self.observed),
            "relative_change": json_safe(self.relative_change),
            "direction": self.direction,
            "score": json_safe(self.score),
            "p_value": json_safe(self.p_value),
            "method": self.method,
            "params": json_safe(self.params),
        }
        if include_expected:
            frame = self.expected
            out["expected"] = [
                {"ts": _iso(ts), **{c: json_safe(row[i]) for i, c in enumerate(frame.columns)}}
                for ts, row in zip(frame.index, frame.to_numpy())
            ]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Per-bucket frame: ``expected`` plus a boolean ``in_window`` column."""
        frame = self.expected.copy()
        if self.window is not None:
            frame["in_window"] = (frame.index >= self.onset) & (frame.index <= self.end)
        else:
            frame["in_window"] = False
        return frame
