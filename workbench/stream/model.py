"""The streaming model of a metric: fitted, versioned, checked for drift and staleness.

The model is the seasonal-naive reference of Hyndman and Athanasopoulos
(*Forecasting: Principles and Practice*, 3rd ed., sec. 5.2): the expected value
of a grain is the mean of the same slot of the week (hour of the week for an
hourly grain) over the fit period, and the noise is the standard deviation of
the residuals around that profile, corrected for the profile having been fitted
on the same weeks (a factor ``sqrt(w / (w - 1))`` for ``w`` weeks).

Each fit is stored as a new version of the metric's baseline
(:func:`workbench.store.baselines.fit_baseline`, ``params.kind = "stream_model"``),
so versions are never overwritten and ``workbench baselines list`` shows them.
A fit carries a *drift report* against the version before it: level,
seasonality amplitude and noise before and after, and a two-sample
Kolmogorov-Smirnov test (Massey, "The Kolmogorov-Smirnov test for goodness of
fit", JASA 1951; :func:`scipy.stats.ks_2samp`) of the residuals, under the
previous model, of its own fit period against the data that came after it.

A model is *stale* (:func:`model_status`) when it is older than the allowed age,
or when the data that arrived after its fit period already drifts from it by the
same test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .._format import iso
from .._types import MetricSpec
from ..errors import StoreError
from ..store.baselines import _has_table, fit_baseline, load_baseline
from ..store.duck import META, Store, StoredPassport
from ..store.sql import q

KIND = "stream_model"
#: Significance of the two-sample test that calls a change drift.
DRIFT_ALPHA = 0.01
#: Fewest grains after a fit period before the drift test is run.
MIN_NEW_GRAINS = 12
#: A model older than this (hours) is stale unless told otherwise.
DEFAULT_MAX_AGE_HOURS = 24.0


def slot_of(ts: pd.DatetimeIndex, grain: pd.Timedelta) -> np.ndarray:
    """Slot of the week of each bucket (hour of the week for an hourly grain)."""
    secs = (ts.day_of_week * 86400 + ts.hour * 3600 + ts.minute * 60 + ts.second).to_numpy()
    return (secs // max(int(grain.total_seconds()), 1)).astype(int)


def metric_series(con, sp: StoredPassport, spec: MetricSpec, lo=None, hi=None) -> pd.Series:
    """The metric per grain (ratio of sums, or sum) from the stored events, half-open."""
    secs = int(sp.manifest.grain_td.total_seconds())
    den = f"sum({q(spec.denominator)})" if spec.kind == "ratio" else "1.0"
    where, args = [], []
    if lo is not None:
        where.append("ts >= ?")
        args.append(pd.Timestamp(lo).to_pydatetime())
    if hi is not None:
        where.append("ts < ?")
        args.append(pd.Timestamp(hi).to_pydatetime())
    w = ("WHERE " + " AND ".join(where)) if where else ""
    df = con.execute(f"SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS b, "
                     f"sum({q(spec.numerator)}) / nullif({den}, 0) AS v "
                     f"FROM {sp.schema}.events {w} GROUP BY ALL ORDER BY b", args).df()
    idx = pd.DatetimeIndex(pd.to_datetime(df["b"], utc=True))
    return pd.Series(df["v"].to_numpy(dtype=float), index=idx).dropna()


@dataclass(frozen=True)
class StreamModel:
    """One fitted version: profile per slot, level, amplitude, noise."""

    id: str
    metric: str
    version: int
    fitted_at: pd.Timestamp
    period: tuple[pd.Timestamp, pd.Timestamp]
    grain: pd.Timedelta
    profile: dict[int, float]
    level: float
    amplitude: float
    noise_sd: float

    def expected(self, ts: pd.DatetimeIndex) -> np.ndarray:
        """Expected value of each bucket (the level where a slot was never seen)."""
        slots = slot_of(ts, self.grain)
        return np.array([self.profile.get(int(s), self.level) for s in slots], dtype=float)

    def z(self, series: pd.Series) -> pd.Series:
        """Standardized residuals of ``series`` under this model."""
        sd = self.noise_sd if self.noise_sd > 0 else np.nan
        return (series - self.expected(series.index)) / sd

    def to_dict(self) -> dict:
        return {"id": self.id, "metric": self.metric, "version": self.version,
                "fitted_at": iso(self.fitted_at),
                "period": [iso(self.period[0]), iso(self.period[1])],
                "level": self.level, "amplitude": self.amplitude, "noise_sd": self.noise_sd}


def _estimate(series: pd.Series, grain: pd.Timedelta) -> dict:
    slots = slot_of(series.index, grain)
    g = series.groupby(slots)
    profile = g.mean()
    weeks = float(np.median(g.size())) if len(profile) else 1.0
    resid = series.to_numpy() - profile.reindex(slots).to_numpy()
    corr = np.sqrt(weeks / (weeks - 1)) if weeks > 1 else 1.0
    noise = float(np.nanstd(resid, ddof=1) * corr) if len(resid) > 1 else 0.0
    return {"kind": KIND, "level": float(series.mean()), "amplitude": float(profile.std(ddof=0)),
            "noise_sd": noise, "weeks": weeks,
            "profile": {str(int(k)): float(v) for k, v in profile.items()}}


def _from_snapshot(snap, grain: pd.Timedelta) -> StreamModel:
    p = snap.params
    return StreamModel(id=snap.id, metric=snap.metric, version=snap.version,
                       fitted_at=pd.Timestamp(snap.created_at).tz_convert("UTC"),
                       period=snap.period, grain=grain,
                       profile={int(k): float(v) for k, v in p["profile"].items()},
                       level=float(p["level"]), amplitude=float(p["amplitude"]),
                       noise_sd=float(p["noise_sd"]))


def latest_model(con, sp: StoredPassport, metric: str) -> StreamModel | None:
    """The newest stream-model version of ``metric``, or None if never fitted."""
    if not _has_table(con, "baselines"):
        return None
    r = con.execute(f"SELECT id FROM {META}.baselines WHERE passport = ? AND metric = ? AND "
                    f"json_extract_string(params, '$.kind') = ? ORDER BY version DESC LIMIT 1",
                    [sp.name, metric, KIND]).fetchone()
    return None if r is None else _from_snapshot(load_baseline(con, r[0]), sp.manifest.grain_td)


def drift_test(model: StreamModel, before: pd.Series, after: pd.Series) -> dict:
    """Two-sample KS test of residuals under ``model``: its fit period against later data."""
    from scipy.stats import ks_2samp

    if len(after) < MIN_NEW_GRAINS or len(before) < MIN_NEW_GRAINS:
        return {"test": "ks_2samp", "n_before": len(before), "n_after": len(after),
                "statistic": None, "p_value": None, "drift": False,
                "note": f"fewer than {MIN_NEW_GRAINS} grains to compare"}
    rb = (before - model.expected(before.index)).to_numpy()
    ra = (after - model.expected(after.index)).to_numpy()
    res = ks_2samp(rb, ra)
    return {"test": "ks_2samp", "n_before": len(rb), "n_after": len(ra),
            "statistic": float(res.statistic), "p_value": float(res.pvalue),
            "drift": bool(res.pvalue < DRIFT_ALPHA),
            "mean_shift": float(np.mean(ra) - np.mean(rb))}


@dataclass(frozen=True)
class RetrainReport:
    """A new model version and what changed against the previous one."""

    model: StreamModel
    previous: StreamModel | None
    drift: dict

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(),
                "previous": self.previous.to_dict() if self.previous else None,
                "drift": self.drift}

    def summary(self) -> str:
        m, p, d = self.model, self.previous, self.drift
        lines = [f"{m.metric}: fitted {m.id} (version {m.version}) on "
                 f"{m.period[0]:%Y-%m-%d %H:%M} .. {m.period[1]:%Y-%m-%d %H:%M}"]
        if p is None:
            lines.append("  first model of this metric: no drift report")
            return "\n".join(lines)
        for key in ("level", "amplitude", "noise_sd"):
            a, b = getattr(p, key), getattr(m, key)
            rel = (b / a - 1) if a else float("nan")
            lines.append(f"  {key:10s} {a:.5g} -> {b:.5g} ({rel:+.1%})")
        t = d["test"]
        if t["p_value"] is None:
            lines.append(f"  two-sample test: not run ({t['note']})")
        else:
            lines.append(f"  two-sample KS test, residuals under v{p.version}, fit period "
                         f"({t['n_before']} grains) vs after it ({t['n_after']}): "
                         f"D={t['statistic']:.3f}, p={t['p_value']:.3g} -> "
                         + ("DRIFT" if t["drift"] else "no drift"))
        return "\n".join(lines)


def retrain(store: Store, passport: str, metric: str, *, days: float = 28.0) -> RetrainReport:
    """Refit ``metric``'s stream model on the last ``days`` of stored data.

    The fit is a new baseline version (never overwriting one) whose ``params``
    hold the model; its drift report against the previous version is stored in
    ``wb_meta.model_drift`` and returned.

    Examples
    --------
    >>> with Store("shop.duckdb") as st:                               # doctest: +SKIP
    ...     print(retrain(st, "shop", "conversion_rate").summary())
    """
    sp = store.passport(passport)
    spec = sp.manifest.metric(metric)
    grain = sp.manifest.grain_td
    hi = store.con.execute(f"SELECT max(ts) FROM {sp.schema}.events").fetchone()[0]
    if hi is None:
        raise StoreError(f"{passport} has no events yet: nothing to fit")
    end = pd.Timestamp(hi).tz_convert("UTC").floor(grain) + grain
    start = end - pd.Timedelta(days=days)
    series = metric_series(store.con, sp, spec, start, end)
    if len(series) < 2:
        raise StoreError(f"{passport}: fewer than 2 grains of {metric} in the last {days:g} "
                         "days: nothing to fit")
    previous = latest_model(store.con, sp, metric)
    params = _estimate(series, grain)
    snap = fit_baseline(store, passport, metric, period=(series.index[0], end), params=params,
                        note="retrain", reuse=False)
    model = _from_snapshot(snap, grain)
    drift: dict = {"previous": None, "changes": {}, "test": None, "drift": False}
    if previous is not None:
        before = metric_series(store.con, sp, spec, *previous.period)
        after = metric_series(store.con, sp, spec, previous.period[1], end)
        test = drift_test(previous, before, after)
        drift = {"previous": previous.id,
                 "changes": {k: {"before": getattr(previous, k), "after": getattr(model, k)}
                             for k in ("level", "amplitude", "noise_sd")},
                 "test": test, "drift": test["drift"]}
    c = store.con
    c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.model_drift (model_id VARCHAR PRIMARY KEY,
        previous_id VARCHAR, report JSON, drift BOOLEAN, created_at TIMESTAMPTZ)""")
    c.execute(f"INSERT INTO {META}.model_drift VALUES (?, ?, ?, ?, ?)",
              [model.id, drift["previous"], json.dumps(drift), drift["drift"],
               datetime.now(timezone.utc)])
    return RetrainReport(model, previous, drift)


def model_status(con, sp: StoredPassport, metric: str, *, max_age_hours: float | None = None,
                 now: pd.Timestamp | None = None) -> dict | None:
    """``{id, version, fitted_at, age_hours, stale, reasons}`` of the newest model, or None.

    Stale when older than ``max_age_hours`` (default :data:`DEFAULT_MAX_AGE_HOURS`),
    or when the data after its fit period drifts from it (:func:`drift_test`).
    """
    model = latest_model(con, sp, metric)
    if model is None:
        return None
    max_age = DEFAULT_MAX_AGE_HOURS if max_age_hours is None else float(max_age_hours)
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    age = (now - model.fitted_at).total_seconds() / 3600.0
    spec = sp.manifest.metric(metric)
    test = drift_test(model, metric_series(con, sp, spec, *model.period),
                      metric_series(con, sp, spec, model.period[1], None))
    reasons = []
    if age > max_age:
        reasons.append(f"fitted {age:.1f} h ago, more than the allowed {max_age:g} h")
    if test["drift"]:
        reasons.append(f"the data after its fit period drifts from it (KS p={test['p_value']:.3g})")
    return {"id": model.id, "version": model.version, "fitted_at": iso(model.fitted_at),
            "age_hours": round(age, 2), "max_age_hours": max_age, "stale": bool(reasons),
            "reasons": reasons, "drift_test": test}
