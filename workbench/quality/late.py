"""Late data: the incomplete tail of a feed, which is not judged until it arrives.

Rows of the last hours of a warehouse extract are often still arriving (late
partitions, retried loads). A drop there is not yet a divergence. The audit's
expected-volume model (:func:`workbench.quality.audit.audit_quality`, check
``late_data``) says how many rows a bucket should hold: the median of the same
bucket one and two weeks earlier (a seasonal-naive forecast, Hyndman and
Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 2021, sec.
5.2; the median of two seasons resists one odd week). The tail is the run of
last buckets holding less than ``min_ratio`` of their expected rows; the
investigation drops those buckets before detecting anything and says how much
is missing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class LateTail:
    """The last buckets of a feed whose rows are incomplete.

    Attributes
    ----------
    start, end:
        First incomplete bucket and the end of the last one (exclusive).
    buckets:
        How many buckets the tail spans.
    expected_rows, observed_rows:
        Rows the expected-volume model predicts over the tail, and rows present.
    hours:
        Length of the tail in hours.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    buckets: int
    expected_rows: float
    observed_rows: float
    hours: float

    @property
    def missing_share(self) -> float:
        """Share of the expected rows of the tail that are missing (0..1)."""
        if self.expected_rows <= 0:
            return 0.0
        return float(np.clip(1.0 - self.observed_rows / self.expected_rows, 0.0, 1.0))

    def message(self) -> str:
        """The sentence the answer carries."""
        return (f"this conclusion may change when the late data arrives: "
                f"{self.missing_share:.0%} of the expected rows of the last {self.hours:g} "
                f"hours are missing (from {self.start:%Y-%m-%d %H:%M} UTC; those hours were "
                "not judged)")

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "buckets": self.buckets, "hours": self.hours,
                "expected_rows": round(self.expected_rows, 1),
                "observed_rows": round(self.observed_rows, 1),
                "missing_share": round(self.missing_share, 4), "message": self.message()}


def expected_rows(rows: pd.Series, weeks: tuple[int, ...] = (1, 2)) -> pd.Series:
    """Expected rows per bucket: the median of the same bucket ``weeks`` earlier."""
    week = pd.Timedelta("7D")
    ref = pd.concat([rows.shift(freq=week * k) for k in weeks], axis=1).median(axis=1)
    return ref.reindex(rows.index)


def incomplete_tail(series: pd.DataFrame, grain: pd.Timedelta, *, min_ratio: float = 0.8,
                    max_buckets: int = 6, min_history: int = 24 * 8) -> LateTail | None:
    """The run of last buckets holding fewer rows than expected, or ``None``.

    Parameters
    ----------
    series:
        ``ts, rows`` per bucket of the whole feed (``workbench.store.metric_series``).
    grain:
        The bucket length.
    min_ratio:
        A bucket is incomplete below this share of its expected rows (the audit's 0.8).
    max_buckets:
        How far back the tail is looked for (the audit's 6 buckets).
    min_history:
        Buckets needed before the expected-volume model is trusted.

    Examples
    --------
    >>> tail = incomplete_tail(series, pd.Timedelta("1h"))   # doctest: +SKIP
    >>> tail.missing_share, tail.hours                       # doctest: +SKIP
    (0.48, 4.0)
    """
    if series is None or len(series) < min_history:
        return None
    s = series.set_index(pd.to_datetime(series["ts"], utc=True))["rows"].astype(float)
    full = pd.date_range(s.index.min(), s.index.max(), freq=grain)
    s = s.reindex(full).fillna(0.0)
    exp = expected_rows(s)
    tail_obs, tail_exp = s.iloc[-max_buckets:], exp.iloc[-max_buckets:]
    ratio = (tail_obs / tail_exp.where(tail_exp > 0)).fillna(1.0).to_numpy()
    short = ratio < min_ratio
    if not short[-1]:
        return None
    k = int(np.argmin(short[::-1])) if not short.all() else len(short)
    obs, expd = float(tail_obs.iloc[-k:].sum()), float(tail_exp.iloc[-k:].sum())
    start = tail_obs.index[-k]
    return LateTail(start=start, end=tail_obs.index[-1] + grain, buckets=k,
                    expected_rows=expd, observed_rows=obs,
                    hours=float(k * grain / pd.Timedelta("1h")))
