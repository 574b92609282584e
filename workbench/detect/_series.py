"""Validate and normalize the input series of a detector.

Every detector receives the same normalized frame: a complete regular UTC grid
at ``grain`` from the first to the last bucket, columns ``num`` and ``den``,
with NaN in both where a bucket is missing (absent, NaN, or a ratio with
``den <= 0``). Missing is never turned into zero.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.errors import UsageError

KINDS = ("ratio", "sum")
BETTER = ("higher", "lower")


def parse_grain(grain) -> pd.Timedelta:
    try:
        td = pd.Timedelta(grain)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"grain must be a duration such as '1h' or pd.Timedelta('1h'); "
                         f"got {grain!r}") from exc
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise UsageError(f"grain must be a positive duration such as '1h'; got {grain!r}")
    return td


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; "
                         f"got {value!r}")
    return value


def prepare_series(series: pd.DataFrame, *, kind: str, grain: pd.Timedelta) -> pd.DataFrame:
    """Return the normalized ``num``/``den`` frame on a complete grid.

    Parameters
    ----------
    series : pandas.DataFrame
        Tz-aware DatetimeIndex; column ``num``; ``den`` (required for ratios,
        ignored for sums: a sum metric has ``den = 1`` in every present bucket);
        other columns (``rows``...) are ignored.
    kind : {"ratio", "sum"}
    grain : pandas.Timedelta
        Timestamps are floored to the grain; several rows in one bucket are summed.
    """
    if not isinstance(series, pd.DataFrame):
        raise UsageError(f"series must be a pandas DataFrame with columns num[, den]; "
                         f"got {type(series).__name__}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise UsageError("series must have a DatetimeIndex of bucket timestamps; got "
                         f"{type(series.index).__name__} (use series.set_index('ts'))")
    if series.index.tz is None:
        raise UsageError("series index must be tz-aware UTC; localize it with "
                         "series.tz_localize('UTC')")
    if "num" not in series.columns:
        raise UsageError("series has no column 'num'; columns are: "
                         + ", ".join(map(str, series.columns)))
    if kind == "ratio" and "den" not in series.columns:
        raise UsageError("a ratio metric needs a column 'den'; columns are: "
                         + ", ".join(map(str, series.columns)))
    try:
        num = pd.to_numeric(series["num"], errors="raise").astype(float)
        den = (pd.to_numeric(series["den"], errors="raise").astype(float) if kind == "ratio"
               else pd.Series(1.0, index=series.index).where(num.notna()))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"series columns num and den must be numeric: {exc}") from exc

    frame = pd.DataFrame({"num": num.to_numpy(), "den": den.to_numpy()},
                         index=series.index.tz_convert("UTC").floor(grain))
    frame = frame[frame.index.notna()]
    if frame.empty:
        raise UsageError("series has no rows")
    if not frame.index.is_unique or not frame.index.is_monotonic_increasing:
        frame = frame.groupby(level=0, sort=True).sum(min_count=1)
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=grain, name="ts")
    frame = frame.reindex(grid)

    num_v = frame["num"].to_numpy(copy=True)
    den_v = frame["den"].to_numpy(copy=True)
    if np.any(np.isinf(num_v)) or np.any(np.isinf(den_v)):
        raise UsageError("series has infinite values in num or den")
    if np.nanmin(num_v, initial=0.0) < 0:
        bad = frame.index[np.nan_to_num(num_v, nan=0.0) < 0][0]
        raise UsageError(f"series column 'num' is negative at {bad.isoformat()}; the seasonal "
                         "detector models non-negative sums (counts, amounts)")
    if np.nanmin(den_v, initial=0.0) < 0:
        bad = frame.index[np.nan_to_num(den_v, nan=0.0) < 0][0]
        raise UsageError(f"series column 'den' is negative at {bad.isoformat()}")
    missing = np.isnan(num_v) | np.isnan(den_v) | (den_v <= 0)
    num_v[missing] = np.nan
    den_v[missing] = np.nan
    return pd.DataFrame({"num": num_v, "den": den_v}, index=grid)
