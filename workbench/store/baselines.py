"""Versioned baseline snapshots: what "normal" was, fitted on a period, kept forever.

A baseline is fitted on a period and stored with an id, a version, its parent
(the version it recalibrates), the period, the method and its parameters, and
the changes and experiments that were active during that period (a baseline
fitted across a flag rollout is not the same "normal" as one fitted before
it). Recalibration writes a new version; no version is ever overwritten.

The stored content is a seasonal profile cube: for the whole metric and for
every value of every dimension (cardinality permitting), the mean numerator
and denominator per hour of the week over the weeks of the period, and the
standard deviation of the metric across those weeks. It is computed by one
``GROUPING SETS`` statement and loaded back as an :class:`xarray.Dataset` with
dimensions ``(slice, hour_of_week)``. The hour-of-week profile is the classic
seasonal-naive reference (Hyndman and Athanasopoulos, *Forecasting: Principles
and Practice*, 3rd ed., sec. 5.2); the detector's own fitted parameters can be
recorded with it (``params``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .._types import MetricSpec
from ..errors import StoreError
from .duck import META, Store, StoredPassport, lit, q
from .queries import _ts, cardinalities

METHOD = "hour_of_week_mean"
ALL = "(all)"


@dataclass(frozen=True)
class BaselineSnapshot:
    """One stored baseline version (metadata; ``cube`` loads the data)."""

    id: str
    passport: str
    metric: str
    version: int
    parent: str | None
    period: tuple[pd.Timestamp, pd.Timestamp]
    method: str
    params: dict
    active_changes: tuple[str, ...]
    active_experiments: tuple[str, ...]
    created_at: str
    note: str = ""
    cells: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def cube(self):
        """The profile as an ``xarray.Dataset`` over ``(slice, hour_of_week)``."""
        import xarray as xr

        c = self.cells
        if c is None:
            raise StoreError(f"baseline {self.id}: cells not loaded")
        c = c.assign(slice=c["dimension"] + "=" + c["value"])
        idx = pd.MultiIndex.from_frame(c[["slice", "how"]])
        ds = xr.Dataset.from_dataframe(
            c.set_index(idx)[["num", "den", "value_mean", "value_sd", "weeks"]]
            .rename_axis(["slice", "hour_of_week"]))
        ds.attrs.update({"baseline_id": self.id, "metric": self.metric, "method": self.method,
                         "period_start": self.period[0].isoformat(),
                         "period_end": self.period[1].isoformat()})
        return ds

    def expected(self, ts: pd.DatetimeIndex, slice_: str = f"{ALL}={ALL}") -> pd.DataFrame:
        """Expected ``num, den, value`` of a slice at the given buckets."""
        c = self.cells
        sub = c[(c["dimension"] + "=" + c["value"]) == slice_].set_index("how")
        how = (ts.day_of_week * 24 + ts.hour).to_numpy()
        out = sub.reindex(how)[["num", "den", "value_mean", "value_sd"]]
        out.index = ts
        return out

    def to_dict(self) -> dict:
        return {"id": self.id, "passport": self.passport, "metric": self.metric,
                "version": self.version, "parent": self.parent,
                "period": [self.period[0].isoformat(), self.period[1].isoformat()],
                "method": self.method, "params": self.params,
                "active_changes": list(self.active_changes),
                "active_experiments": list(self.active_experiments),
                "created_at": self.created_at, "note": self.note}


def _init(store: Store) -> None:
    c = store.con
    c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.baselines (
        id VARCHAR PRIMARY KEY, passport VARCHAR, metric VARCHAR, version INTEGER,
        parent VARCHAR, period_start TIMESTAMPTZ, period_end TIMESTAMPTZ, method VARCHAR,
        params JSON, active_changes JSON, active_experiments JSON, created_at VARCHAR,
        note VARCHAR, UNIQUE (passport, metric, version))""")
    c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.baseline_cells (
        baseline_id VARCHAR, dimension VARCHAR, value VARCHAR, how INTEGER, num DOUBLE,
        den DOUBLE, value_mean DOUBLE, value_sd DOUBLE, weeks INTEGER)""")


def _has_table(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                            "table_schema = ? AND table_name = ?", [META, name]).fetchone()[0])


def profile_sql(sp: StoredPassport, metric: MetricSpec, period, *, max_cardinality=200,
                con=None) -> str:
    """The one statement computing the hour-of-week profile of every slice."""
    cards = cardinalities(con, sp) if con is not None else {}
    dims = [d for d in sp.manifest.all_dimensions
            if con is None or cards[d] <= max_cardinality]
    secs = int(sp.manifest.grain_td.total_seconds())
    den = q(metric.denominator) if metric.kind == "ratio" else "1.0"
    counted = _profile_from_counts(con, sp, metric, period, dims) if con is not None else None
    if counted is not None:
        return counted
    sets = ", ".join(["(b)"] + [f"(b, {q(d)})" for d in dims])
    case_dim = "CASE " + " ".join(f"WHEN GROUPING({q(d)}) = 0 THEN {lit(d)}" for d in dims) + \
        f" ELSE {lit(ALL)} END" if dims else lit(ALL)
    codes = "".join(f", {q(d)}" for d in dims)
    case_val = ("CASE " + " ".join(
        f"WHEN g.dimension = {lit(d)} THEN (SELECT value FROM {sp.schema}.{q('dict_' + d)} "
        f"WHERE code = g.{q(d)})" for d in dims) + f" ELSE {lit(ALL)} END") if dims else lit(ALL)
    return (
        f"WITH e AS (SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS b{codes}, "
        f"{q(metric.numerator)} AS n, {den} AS d FROM {sp.schema}.events\n"
        f"  WHERE ts >= {_ts(period[0])} AND ts < {_ts(period[1])}),\n"
        f"g AS (SELECT b, {case_dim} AS dimension{codes}, SUM(n) AS num, SUM(d) AS den "
        f"FROM e GROUP BY GROUPING SETS ({sets})),\n"
        f"v AS (SELECT {case_val} AS value, g.dimension, "
        f"(isodow(b) - 1) * 24 + hour(b) AS how, num, den FROM g)\n"
        f"SELECT dimension, value, how, avg(num) AS num, avg(den) AS den, "
        f"avg(num / nullif(den, 0)) AS value_mean, stddev_samp(num / nullif(den, 0)) AS value_sd, "
        f"count(*) AS weeks FROM v GROUP BY ALL ORDER BY ALL")


def _profile_from_counts(con, sp: StoredPassport, metric: MetricSpec, period, dims
                         ) -> str | None:
    """:func:`profile_sql` over the sums kept at ingest (``agg_<g>s`` for the total,
    ``qc_presence_<g>s`` per value): the same cells when the period starts and ends on
    bucket boundaries and every batch was counted; None otherwise."""
    from . import qcounts
    from .duck import agg_table

    secs = int(sp.manifest.grain_td.total_seconds())
    if not qcounts.has_tables(con, sp.schema, secs) or not qcounts.covered(
            con, sp, [("rows", "")] + [("presence", d) for d in dims]):
        return None
    iv = f"INTERVAL '{secs} seconds'"
    p0, p1 = _ts(period[0]), _ts(period[1])
    if not con.execute(f"SELECT time_bucket({iv}, {p0}) = {p0} AND "
                       f"time_bucket({iv}, {p1}) = {p1}").fetchone()[0]:
        return None
    # a sum metric's denominator is 1.0 per row in the scan: the row count here
    den = f"SUM({q(metric.denominator)})" if metric.kind == "ratio" else "SUM(rows)::DOUBLE"
    num = f"SUM({q(metric.numerator)})"
    within = f"b >= {p0} AND b < {p1}"
    case_val = ("CASE " + " ".join(
        f"WHEN g.dimension = {lit(d)} THEN (SELECT value FROM {sp.schema}.{q('dict_' + d)} "
        f"WHERE code = g.code)" for d in dims) + f" ELSE {lit(ALL)} END") if dims else lit(ALL)
    names = ", ".join(lit(d) for d in dims) or "NULL"
    return (
        f"WITH g AS (SELECT b, {lit(ALL)} AS dimension, NULL::INTEGER AS code, {num} AS num, "
        f"{den} AS den FROM {sp.schema}.{q(agg_table(sp.manifest))} WHERE {within} "
        f"GROUP BY b\n"
        f"  UNION ALL SELECT b, dimension, code, {num} AS num, {den} AS den FROM "
        f"{sp.schema}.{q(qcounts.presence_table(secs))}\n"
        f"  WHERE {within} AND dimension IN ({names}) GROUP BY b, dimension, code),\n"
        f"v AS (SELECT {case_val} AS value, g.dimension, "
        f"(isodow(b) - 1) * 24 + hour(b) AS how, num, den FROM g)\n"
        f"SELECT dimension, value, how, avg(num) AS num, avg(den) AS den, "
        f"avg(num / nullif(den, 0)) AS value_mean, stddev_samp(num / nullif(den, 0)) AS value_sd, "
        f"count(*) AS weeks FROM v GROUP BY ALL ORDER BY ALL")


def fit_baseline(store: Store, passport: str, metric: str, *, period, note: str = "",
                 params: dict | None = None, reuse: bool = True) -> BaselineSnapshot:
    """Fit a baseline on ``period`` and store it as the metric's next version.

    Parameters
    ----------
    store:
        A writable store.
    period:
        ``(start, end)``, half-open, UTC.
    params:
        Extra parameters to record (e.g. the detector's configuration).
    reuse:
        If the latest version has the same period, method and parameters, return
        it instead of writing an identical new version.

    Examples
    --------
    >>> b1 = fit_baseline(st, "shop", "conversion_rate",
    ...                   period=("2026-10-31", "2026-11-14"))        # doctest: +SKIP
    >>> b2 = fit_baseline(st, "shop", "conversion_rate",
    ...                   period=("2026-11-03", "2026-11-17"))        # doctest: +SKIP
    >>> b2.version, b2.parent == b1.id                                 # doctest: +SKIP
    (2, True)
    """
    if store.read_only:
        raise StoreError(f"{store.path} is open read-only; baselines need a writable store")
    sp = store.passport(passport)
    spec = sp.manifest.metric(metric)
    p0, p1 = (pd.Timestamp(x) for x in period)
    p0 = p0.tz_localize("UTC") if p0.tzinfo is None else p0.tz_convert("UTC")
    p1 = p1.tz_localize("UTC") if p1.tzinfo is None else p1.tz_convert("UTC")
    if p1 <= p0:
        raise StoreError(f"baseline period end {p1} must be after its start {p0}")
    _init(store)
    c = store.con
    params = dict(params or {})
    params.setdefault("max_cardinality", 200)
    latest = c.execute(f"SELECT id, version, period_start, period_end, method, params FROM "
                       f"{META}.baselines WHERE passport = ? AND metric = ? "
                       f"ORDER BY version DESC LIMIT 1", [passport, metric]).fetchone()
    if reuse and latest is not None:
        same = (pd.Timestamp(latest[2]) == p0 and pd.Timestamp(latest[3]) == p1
                and latest[4] == METHOD and json.loads(latest[5]) == json.loads(
                    json.dumps(params, default=str)))
        if same:
            return load_baseline(c, latest[0])
    sql = profile_sql(sp, spec, (p0, p1), max_cardinality=params["max_cardinality"], con=c)
    cells = c.execute(sql).df()
    if cells.empty:
        raise StoreError(f"no events of {passport} between {p0} and {p1}: nothing to fit")
    changes = c.execute(
        f"SELECT id FROM {sp.schema}.changes WHERE ts < {_ts(p1)} AND "
        f"(ts >= {_ts(p0)} OR kind IN ('flag', 'experiment', 'config')) ORDER BY ts").fetchall()
    active_ch = tuple(r[0] for r in changes if r[0] is not None)
    exps: tuple[str, ...] = ()
    if c.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                 "AND table_name = 'experiments'", [sp.schema]).fetchone()[0]:
        cols = [r[0] for r in c.execute(f"DESCRIBE {sp.schema}.experiments").fetchall()]
        where = (f"WHERE ts < {_ts(p1)}" if "ts" in cols else "")
        exps = tuple(r[0] for r in c.execute(
            f"SELECT DISTINCT experiment FROM {sp.schema}.experiments {where} ORDER BY 1"
        ).fetchall())
    version = (latest[1] + 1) if latest else 1
    parent = latest[0] if latest else None
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    digest = hashlib.sha256(pd.util.hash_pandas_object(cells, index=False).values.tobytes()
                            ).hexdigest()[:10]
    bid = f"bl-{passport}-{metric}-v{version}-{digest}"
    c.execute("BEGIN TRANSACTION")
    try:
        c.execute(f"INSERT INTO {META}.baselines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [bid, passport, metric, version, parent, p0, p1, METHOD,
                   json.dumps(params, default=str), json.dumps(list(active_ch)),
                   json.dumps(list(exps)), created, note])
        c.register("_cells", cells)
        c.execute(f"INSERT INTO {META}.baseline_cells SELECT {lit(bid)}, dimension, value, how, "
                  f"num, den, value_mean, value_sd, weeks FROM _cells")
        c.unregister("_cells")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return load_baseline(c, bid)


def list_baselines(con, *, passport: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """All stored baseline versions, oldest first."""
    if not _has_table(con, "baselines"):
        return pd.DataFrame(columns=["id", "passport", "metric", "version", "parent",
                                     "period_start", "period_end", "method", "created_at"])
    where, args = [], []
    if passport:
        where.append("passport = ?")
        args.append(passport)
    if metric:
        where.append("metric = ?")
        args.append(metric)
    w = ("WHERE " + " AND ".join(where)) if where else ""
    return con.execute(f"SELECT id, passport, metric, version, parent, period_start, period_end, "
                       f"method, created_at, note FROM {META}.baselines {w} "
                       f"ORDER BY passport, metric, version", args).df()


def load_baseline(con, baseline_id: str) -> BaselineSnapshot:
    """A stored baseline version, with its cells."""
    if not _has_table(con, "baselines"):
        raise StoreError("this store holds no baselines yet")
    r = con.execute(f"SELECT id, passport, metric, version, parent, period_start, period_end, "
                    f"method, params, active_changes, active_experiments, created_at, note "
                    f"FROM {META}.baselines WHERE id = ?", [baseline_id]).fetchone()
    if r is None:
        known = con.execute(f"SELECT id FROM {META}.baselines ORDER BY id").fetchall()
        raise StoreError(f"no baseline '{baseline_id}'; stored: "
                         + (", ".join(k[0] for k in known) or "none"))
    cells = con.execute(f"SELECT dimension, value, how, num, den, value_mean, value_sd, weeks "
                        f"FROM {META}.baseline_cells WHERE baseline_id = ? ORDER BY ALL",
                        [baseline_id]).df()
    return BaselineSnapshot(
        id=r[0], passport=r[1], metric=r[2], version=int(r[3]), parent=r[4],
        period=(pd.Timestamp(r[5]).tz_convert("UTC"), pd.Timestamp(r[6]).tz_convert("UTC")),
        method=r[7], params=json.loads(r[8]), active_changes=tuple(json.loads(r[9])),
        active_experiments=tuple(json.loads(r[10])), created_at=r[11], note=r[12] or "",
        cells=cells)


@dataclass(frozen=True)
class BaselineDiff:
    """What changed between two baseline versions."""

    a: BaselineSnapshot
    b: BaselineSnapshot
    slices: pd.DataFrame  # slice, a_value, b_value, relative_change (largest first)

    def to_dict(self) -> dict:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(),
                "slices": self.slices.head(20).to_dict("records")}

    def summary(self) -> str:
        a, b = self.a, self.b
        lines = [f"{a.id} (v{a.version}) -> {b.id} (v{b.version})",
                 f"  period: {a.period[0]:%Y-%m-%d %H:%M} .. {a.period[1]:%Y-%m-%d %H:%M}  ->  "
                 f"{b.period[0]:%Y-%m-%d %H:%M} .. {b.period[1]:%Y-%m-%d %H:%M}"]
        if a.method != b.method or a.params != b.params:
            lines.append(f"  method: {a.method} {a.params} -> {b.method} {b.params}")
        added = sorted(set(b.active_changes) - set(a.active_changes))
        gone = sorted(set(a.active_changes) - set(b.active_changes))
        if added or gone:
            lines.append(f"  active changes: +{len(added)} ({', '.join(added[:5])}"
                         f"{'...' if len(added) > 5 else ''}), -{len(gone)}")
        ex_add = sorted(set(b.active_experiments) - set(a.active_experiments))
        if ex_add:
            lines.append(f"  experiments now active: {', '.join(ex_add)}")
        lines.append("  expected metric by slice (largest moves first):")
        for r in self.slices.head(8).itertuples():
            lines.append(f"    {r.slice:40s} {r.a_value:.5g} -> {r.b_value:.5g} "
                         f"({r.relative_change:+.1%})")
        return "\n".join(lines)


def diff_baselines(con, a_id: str, b_id: str) -> BaselineDiff:
    """Compare two versions: period, method, active changes, expected value per slice."""
    a, b = load_baseline(con, a_id), load_baseline(con, b_id)

    def per_slice(s: BaselineSnapshot) -> pd.Series:
        c = s.cells.assign(slice=s.cells["dimension"] + "=" + s.cells["value"])
        g = c.groupby("slice")[["num", "den"]].sum()
        return g["num"] / g["den"].replace(0, np.nan)

    va, vb = per_slice(a), per_slice(b)
    df = pd.DataFrame({"a_value": va, "b_value": vb}).dropna()
    df["relative_change"] = df["b_value"] / df["a_value"].replace(0, np.nan) - 1
    df = df.reindex(df["relative_change"].abs().sort_values(ascending=False).index)
    return BaselineDiff(a, b, df.rename_axis("slice").reset_index())
