"""The unit-level table a hypothesis is verified on: cells x time buckets.

One SQL statement reads, per time bucket, the metric's numerator and
denominator in each *cell*: the leaves (finest dimension combinations) are
split by exposure (inside the change's scope or not) and, within each side,
hashed into up to ``max_cells`` groups. Cells are then merged until each
carries enough volume for its log rate to be well behaved (a cell of a few
conversions an hour has a noisy, biased log rate). Hashed cells are random
mixes of leaves, so the cells of one side resemble each other: comparable
units, of similar volume, which is what an unweighted regression (DoWhy's
``backdoor.linear_regression``) needs to be close to efficient.

Columns added for the regression:

``y``
    log of the metric in the cell and bucket (log rate for a ratio, log
    total for a sum): effects are relative, as in the ranking's
    difference-in-differences.
``dose``
    the treatment: exposed share of the cell at that bucket, i.e. 0 outside
    the scope and before the change, the rollout share (0..1) of the latest
    step of the change's target at or before the bucket inside it.
``hour_sin, hour_cos``
    hour of day; ``weekend`` (day of week); ``trend`` (days);
``base``
    the cell's own level: its mean ``y`` at the same hour of day over the
    pre-period (the slice's baseline, with its daily shape);
``market``
    the unexposed traffic's deviation from its own hourly baseline in the
    same bucket: shocks common to everyone (a holiday, a global outage) that
    are not the change. This plays the role of the time fixed effect of a
    difference-in-differences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..store.duck import lit, q
from ..store.queries import filter_sql

COMMON_CAUSES = ("hour_sin", "hour_cos", "weekend", "trend", "base", "market")


@dataclass(frozen=True)
class UnitTable:
    """Cells x buckets with outcome, treatment and common causes (see module doc)."""

    frame: pd.DataFrame
    sql: str
    t0: pd.Timestamp  # the hypothesis' change time (floored to the grain)
    first_dose: pd.Timestamp  # first bucket with a positive dose (t0 unless an earlier step)
    pre_start: pd.Timestamp
    end: pd.Timestamp  # exclusive
    schedule: tuple[tuple[pd.Timestamp, float], ...]  # (bucket, dose) steps
    n_exposed_cells: int
    n_unexposed_cells: int
    rate_like: bool
    ratio: bool
    common_causes: tuple[str, ...]
    den_measure: str | None = None  # the measure traffic is counted in (sessions)

    @property
    def testable(self) -> bool:
        return self.n_exposed_cells > 0 and self.n_unexposed_cells > 0


def utc(t) -> pd.Timestamp:
    """A timestamp in UTC (naive ones are taken as UTC, as the passport spec says)."""
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _ts(t) -> str:
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return f"TIMESTAMPTZ {lit(t.strftime('%Y-%m-%d %H:%M:%S+00'))}"


def _rollout_share(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 1.0
    return 1.0 if not np.isfinite(v) else min(max(v / 100.0, 0.0), 1.0)


def dose_schedule(cause: dict, changes: pd.DataFrame | None, *, grain: pd.Timedelta,
                  start: pd.Timestamp, end: pd.Timestamp) -> tuple[tuple[pd.Timestamp, float], ...]:
    """Exposure steps of a change: its own row plus its rollout's other steps.

    A staged rollout is several rows of one target and scope (10 %, 50 %,
    100 %); the dose at a bucket is the share of the latest step at or before
    it. Earlier rows count only while they ramp *up* to the change (a second
    "enable at 100 %" of a flag already at 100 % is a no-op in the log, not
    the start of the exposure); later rows count whatever they do (a
    rollback to 0 % ends the exposure). A change without ``rollout`` exposes
    its whole scope from its time on.
    """
    t0 = utc(cause["ts"]).floor(grain)
    share0 = _rollout_share(cause.get("rollout"))
    steps = {t0: share0}
    if not _has_rollout(cause.get("rollout")):
        return tuple(steps.items())  # not a dosed change: a redeploy of a target is no "step"
    if changes is None or not len(changes) or cause.get("target") is None \
            or not {"target", "rollout", "scope", "ts"} <= set(changes.columns):
        return tuple(steps.items())
    same = changes[(changes["target"].astype(str) == str(cause["target"]))
                   & changes["rollout"].notna()]
    scope = cause.get("scope") or {}
    rows = sorted((utc(r.ts).floor(grain), _rollout_share(r.rollout))
                  for r in same.itertuples(index=False)
                  if (r.scope if isinstance(r.scope, dict) else {}) == scope)
    floor = share0
    for ts, d in reversed([r for r in rows if start <= r[0] < t0]):
        if not 0 < d < floor:  # not a lower step of a ramp up to this change
            break
        steps[ts], floor = d, d
    for ts, d in rows:
        if t0 < ts < end:
            steps[ts] = d
    return tuple(sorted(steps.items()))


def _has_rollout(x) -> bool:
    try:
        return bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def unit_table_sql(sp, metric, scope: dict, *, start, end, max_cells: int,
                   exclude: dict | None = None) -> str:
    """The one statement behind :func:`build_unit_table` (literals inlined)."""
    secs = int(sp.manifest.grain_td.total_seconds())
    den = f"SUM({q(metric.denominator)})" if metric.kind == "ratio" else "COUNT(*) * 1.0"
    leaf = ", ".join(q(d) for d in sp.manifest.dimensions)
    where = f"ts >= {_ts(start)} AND ts < {_ts(end)}"
    if exclude:
        where += f" AND NOT ({filter_sql(sp, exclude)})"
    return (f"SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS ts,\n"
            f"       CAST(({filter_sql(sp, scope)}) AS INTEGER) AS exposed,\n"
            f"       CAST(hash({leaf}) % {int(max_cells)} AS INTEGER) AS cell,\n"
            f"       SUM({q(metric.numerator)}) AS num, {den} AS den\n"
            f"FROM {sp.schema}.events\n"
            f"WHERE {where}\n"
            f"GROUP BY ALL ORDER BY 1, 2, 3")


def add_baselines(df: pd.DataFrame, cutoff: pd.Timestamp, *, ratio: bool,
                  rate_like: bool) -> pd.DataFrame:
    """``base`` and ``market`` columns learned from the rows before ``cutoff``.

    ``base``: each cell's mean ``y`` at the same hour of day before the cutoff
    (its mean over all hours where an hour is missing); ``market``: the
    unexposed cells' pooled deviation from their own hourly profile in each
    bucket. Placebos in time call this again with an earlier cutoff, so a
    fake post-period never leaks into its own baseline.
    """
    df = df.copy()
    hod = (df["ts"].dt.hour * 60 + df["ts"].dt.minute).to_numpy()
    before = (df["ts"] < cutoff).to_numpy()
    prof = df[before].groupby([df["cell"][before], hod[before]])["y"].mean()
    cell_mean = df[before].groupby("cell")["y"].mean()
    base = prof.reindex(pd.MultiIndex.from_arrays([df["cell"], hod])).to_numpy()
    fallback = cell_mean.reindex(df["cell"]).to_numpy()
    df["base"] = np.where(np.isfinite(base), base, fallback)
    un = df[df["exposed"] == 0].groupby("ts")[["num", "den"]].sum()
    if len(un):
        if ratio:
            yu = np.log((un["num"] + (0.5 if rate_like else 0.0)) / un["den"])
        else:
            yu = np.log(un["num"].clip(lower=0.0) + 0.5)
        yu = yu.replace([np.inf, -np.inf], np.nan)
        hod_u = yu.index.hour * 60 + yu.index.minute
        pre_u = yu.index < cutoff
        prof_u = yu[pre_u].groupby(hod_u[pre_u]).mean()
        mkt = yu - prof_u.reindex(hod_u).to_numpy()
        df["market"] = mkt.reindex(df["ts"]).fillna(0.0).to_numpy()
    else:
        df["market"] = 0.0
    return df[np.isfinite(df["base"])].reset_index(drop=True)


def build_unit_table(con, sp, metric, cause: dict, *, end: pd.Timestamp, grain: pd.Timedelta,
                     pre: pd.Timedelta, post_max: pd.Timedelta, max_cells: int,
                     min_cell_volume: float, changes: pd.DataFrame | None = None,
                     exclude: dict | None = None) -> UnitTable:
    """Read and shape the unit table of one hypothesis (see the module docstring).

    ``exclude`` leaves a slice out entirely (the rest-of-scope check).
    """
    scope = cause.get("scope") or {}
    t0 = utc(cause["ts"]).floor(grain)
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM {sp.schema}.events").fetchone()
    data_start = pd.Timestamp(lo).tz_convert("UTC").floor(grain)
    data_end = pd.Timestamp(hi).tz_convert("UTC").floor(grain) + grain
    stop = min(max(utc(end), t0 + grain), t0 + post_max, data_end)
    # earlier steps of a staged rollout (within ``pre``) belong to the treatment, and the
    # pre-period then ends at the first of them
    schedule = dose_schedule(cause, changes, grain=grain, start=t0 - pre, end=stop)
    first_dose = next((t for t, d in schedule if d > 0), t0)
    pre_start = max(min(first_dose, t0) - pre, data_start)
    sql = unit_table_sql(sp, metric, scope, start=pre_start, end=stop, max_cells=max_cells,
                         exclude=exclude)
    raw = con.execute(sql).df()
    raw["ts"] = pd.to_datetime(raw["ts"], utc=True)
    raw["num"] = raw["num"].astype(float)
    raw["den"] = raw["den"].astype(float)
    raw["exposed"] = raw["exposed"].astype(int)
    pre_mask = raw["ts"] < min(first_dose, t0)

    tot_num, tot_den = raw["num"].sum(), raw["den"].sum()
    ratio = metric.kind == "ratio"
    rate_like = bool(ratio and tot_den > 0 and tot_num <= tot_den)
    vol_col = "num" if (not ratio or rate_like) else "den"

    # merge hashed cells until each carries min_cell_volume per bucket (pre-period)
    n_pre = max(raw.loc[pre_mask, "ts"].nunique(), 1)
    cells = []
    for e in (0, 1):
        side = raw[raw["exposed"] == e]
        if side.empty:
            continue
        vol = side[pre_mask[side.index]].groupby("cell")[vol_col].sum() / n_pre
        k = int(np.clip(np.floor(vol.sum() / max(min_cell_volume, 1e-9)), 1, max_cells))
        merged = (side["cell"] % k).astype(int)
        vol_k = (vol.groupby(vol.index % k).sum()).reindex(range(k), fill_value=0.0)
        small = set(vol_k.index[vol_k < 0.5 * min_cell_volume]) if k > 1 else set()
        if small:  # a thin cell joins the largest one
            big = int(vol_k.idxmax())
            merged = merged.where(~merged.isin(small), big)
        cells.append(side.assign(cell=merged + 100 * e))
    df = pd.concat(cells, ignore_index=True) if cells else raw.iloc[:0]
    df = df.groupby(["ts", "exposed", "cell"], as_index=False)[["num", "den"]].sum()
    df = df[df["den"] > 0].reset_index(drop=True)

    if ratio:
        if rate_like:  # a continuity correction keeps an hour without conversions finite
            df["y"] = np.log((df["num"] + 0.5) / df["den"])
        else:
            df = df[df["num"] > 0].reset_index(drop=True)
            df["y"] = np.log(df["num"] / df["den"])
    else:
        df["y"] = np.log(df["num"].clip(lower=0.0) + 0.5)

    # the treatment: exposed share inside the scope from each step on
    dose_t = pd.Series(0.0, index=pd.DatetimeIndex(sorted(df["ts"].unique())))
    for ts, d in schedule:
        dose_t[dose_t.index >= ts] = d
    df["dose"] = df["exposed"] * dose_t.reindex(df["ts"]).to_numpy()

    hour = df["ts"].dt.hour.to_numpy() + df["ts"].dt.minute.to_numpy() / 60.0
    df["hour_sin"] = np.sin(2 * np.pi * hour / 24.0)
    df["hour_cos"] = np.cos(2 * np.pi * hour / 24.0)
    df["weekend"] = (df["ts"].dt.day_of_week >= 5).astype(float)
    df["trend"] = (df["ts"] - pre_start) / pd.Timedelta("1D")
    df = add_baselines(df, min(first_dose, t0), ratio=ratio, rate_like=rate_like)
    # a constant column (no unexposed traffic: no market; a daily grain: no hour of day;
    # a window without a weekend) adds nothing but a singular design
    common = [c for c in COMMON_CAUSES if df[c].nunique() > 1]
    n_exp = int(df.loc[df["exposed"] == 1, "cell"].nunique())
    n_un = int(df.loc[df["exposed"] == 0, "cell"].nunique())
    return UnitTable(frame=df, sql=sql, t0=t0, first_dose=first_dose, pre_start=pre_start,
                     end=stop, schedule=schedule, n_exposed_cells=n_exp, n_unexposed_cells=n_un,
                     rate_like=rate_like, ratio=ratio, common_causes=tuple(common),
                     den_measure=metric.denominator if ratio else None)
