"""Data-quality audits run before any conclusion: gaps and duplicated rows.

Checks (each one SQL statement over the store, aggregated by DuckDB):

- **gaps** (completeness): a dimension value that reported in (almost) every
  bucket of its history and then reports nothing for a run of buckets. Using
  *presence* of a value (not its volume) separates missing data from a real
  drop in traffic: traffic that halves still reports, a broken pipeline does
  not.
- **duplicates**: for pre-aggregated facts (one row per bucket and leaf, which
  the audit infers from the history), buckets where leaves appear more than
  once. The duplicated volume per bucket is measured so the caller can remove
  it and ask whether the divergence survives.
- **batches**: event files re-sent with identical content were skipped at
  ingest; reported for the record.

Each finding carries the buckets and slice it covers, the volume at stake and
which conclusions it puts at risk; :func:`correct_series` gives the series as
it would be with the defect repaired (gaps filled from the seasonal
baseline, duplicates removed), so the investigation can say what would change
with complete data. The rule "a defect matters when the conclusion does not
survive its repair" follows the data-validation practice of Breck et al.,
"Data Validation for Machine Learning" (MLSys 2019) and Schelter et al.,
"Automating Large-Scale Data Quality Verification" (VLDB 2018).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from .._types import MetricSpec
from ..store import StoredPassport
from ..store import qcounts
from ..store.sql import lit, q
from ..store.queries import _ts, cardinalities, grouping_labels


@dataclass(frozen=True)
class QualityConfig:
    """Tuning of the audits.

    Attributes
    ----------
    regular_presence:
        A value counts as regular when present in at least this share of the
        history's buckets; only regular values can have gaps.
    min_gap_buckets:
        Shortest run of absent buckets reported as a gap.
    max_cardinality:
        Dimensions with more values than this are not scanned for gaps.
    min_expected_rows:
        A run of absent buckets is a gap only if the value usually brings at
        least this many rows over the run (exp(-12) ~ 6e-6 by chance).
    duplicate_concentration:
        A duplicated block is placed in a slice by every ``dim=value`` holding at
        least this share of its excess rows.
    max_buckets, max_cells:
        Bounds of the gap scan's work: it lays out every bucket of the data's
        span (``max_buckets``) and, per dimension, a buckets x values table
        (``max_cells``). Past a bound that part is skipped with an ``info``
        finding instead of growing memory with the span (issue 19: one stray
        far-future row asked for every hourly bucket up to it).
    """

    regular_presence: float = 0.98
    min_expected_rows: float = 12.0
    min_gap_buckets: int = 1
    max_cardinality: int = 500
    duplicate_concentration: float = 0.99
    max_buckets: int = 1_000_000
    max_cells: int = 20_000_000


@dataclass(frozen=True)
class QualityFinding:
    """One data-quality problem and what it puts at risk."""

    check: str
    severity: str  # "info" | "warning" | "error"
    detail: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None  # exclusive
    slice: dict = field(default_factory=dict)
    buckets: int = 0
    puts_at_risk: tuple[str, ...] = ()
    sql: str = ""

    def to_dict(self) -> dict:
        return {"check": self.check, "severity": self.severity, "detail": self.detail,
                "start": None if self.start is None else self.start.isoformat(),
                "end": None if self.end is None else self.end.isoformat(),
                "slice": dict(self.slice), "buckets": self.buckets,
                "puts_at_risk": list(self.puts_at_risk),
                **({"sql": self.sql} if self.sql else {})}  # show me the query (issue 17)


@dataclass(frozen=True)
class QualityReport:
    """All findings of one audit, plus the per-bucket duplicate volume."""

    findings: tuple[QualityFinding, ...]
    duplicate_buckets: pd.DataFrame  # ts, rows, distinct_rows, dup_<measure>...
    seconds: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([f.to_dict() for f in self.findings])

    def to_dict(self) -> dict:
        return {"findings": [f.to_dict() for f in self.findings]}

    def of(self, check: str) -> list[QualityFinding]:
        return [f for f in self.findings if f.check == check]


def _skipped_gap_scan(what: str, cfg: QualityConfig, sql: str) -> QualityFinding:
    return QualityFinding(
        check="completeness", severity="info",
        detail=(f"gap scan skipped for {what}: over its bound (max_buckets {cfg.max_buckets}, "
                f"max_cells {cfg.max_cells}); a coarser grain or a shorter span checks it"),
        puts_at_risk=("gaps in that part of the data are not looked for",), sql=sql)


def _gap_scan_too_big(pres: pd.DataFrame, grain: pd.Timedelta, cfg: QualityConfig,
                      sql: str) -> QualityFinding | None:
    """An info finding when the data's span holds more buckets than the scan may lay out."""
    if pres.empty:
        return None
    nb = int((pres["ts"].max() - pres["ts"].min()) / grain) + 1
    if nb <= cfg.max_buckets:
        return None
    return _skipped_gap_scan(f"the whole span ({nb} buckets of {grain})", cfg, sql)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and end (exclusive) indexes of runs of True."""
    if not mask.any():
        return []
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def audit_quality(con: duckdb.DuckDBPyConnection, sp: StoredPassport, *,
                  config: QualityConfig | None = None,
                  skipped_batches: list[str] | None = None) -> QualityReport:
    """Run the audits over everything stored for one passport.

    Parameters
    ----------
    con, sp:
        An open store connection and the stored passport.
    skipped_batches:
        Files the last ingest skipped as duplicates (from its report).

    Examples
    --------
    >>> rep = audit_quality(store.con, store.passport())     # doctest: +SKIP
    >>> rep.to_frame()[["check", "severity", "detail"]]       # doctest: +SKIP
    """
    import time

    t0 = time.perf_counter()
    cfg = config or QualityConfig()
    m = sp.manifest
    secs = int(m.grain_td.total_seconds())
    findings: list[QualityFinding] = []
    bucket = f"time_bucket(INTERVAL '{secs} seconds', ts)"

    # counts kept per batch at ingest (store/qcounts.py) when the store has them all;
    # each finding still shows the query over the facts that gives the same numbers
    fast = qcounts.has_tables(con, sp.schema, secs)
    # ---------------------------------------------------------------- gaps
    cards = cardinalities(con, sp)
    dims = [d for d in m.all_dimensions if cards[d] <= cfg.max_cardinality]
    if dims:
        sets = ", ".join(f"(b, {q(d)})" for d in dims)
        case_dim, case_val = grouping_labels(sp, dims)
        codes = ", ".join(q(d) for d in dims)
        gap_sql = (f"WITH e AS (SELECT {bucket} AS b, {codes} FROM {sp.schema}.events),\n"
                   f"g AS (SELECT b, {case_dim} AS dimension, {codes}, COUNT(*) AS rows FROM e "
                   f"GROUP BY GROUPING SETS ({sets}))\n"
                   f"SELECT b AS ts, dimension, {case_val} AS value, rows FROM g")
        if fast and qcounts.covered(con, sp, [("presence", d) for d in dims]):
            pres = con.execute(_presence_sql(sp, dims, secs)).df()
        else:
            pres = con.execute(gap_sql).df()
        pres["ts"] = pd.to_datetime(pres["ts"], utc=True)
        order = {d: i for i, d in enumerate(dims)}  # findings in manifest order
        pres = pres.sort_values(["dimension", "ts"], key=lambda c: c.map(order) if
                                c.name == "dimension" else c, kind="stable")
        too_big = _gap_scan_too_big(pres, m.grain_td, cfg, gap_sql)
        if too_big is not None:
            findings.append(too_big)
            pres = pres.iloc[:0]
        all_ts = (pd.date_range(pres["ts"].min(), pres["ts"].max(), freq=m.grain_td)
                  if len(pres) else pd.DatetimeIndex([], tz="UTC"))
        nb = len(all_ts)
        any_present = all_ts.isin(pd.DatetimeIndex(pres["ts"].unique()))
        for a, b in _runs(~any_present):
            start, end = all_ts[a], all_ts[b - 1] + m.grain_td
            findings.append(QualityFinding(
                check="completeness", severity="warning",
                detail=(f"no rows at all from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
                        f"UTC ({b - a} buckets): the whole feed is missing"),
                start=start, end=end, slice={}, buckets=int(b - a),
                puts_at_risk=("every sum and every conclusion about that period",),
                sql=gap_sql))
        for dim, grp in pres.groupby("dimension", sort=False):
            if nb * grp["value"].nunique() > cfg.max_cells:
                findings.append(_skipped_gap_scan(f"{dim}: {nb} buckets x "
                                                  f"{grp['value'].nunique()} values", cfg,
                                                  gap_sql))
                continue
            wide = grp.pivot_table(index="ts", columns="value", values="rows",
                                   aggfunc="sum", observed=True).reindex(all_ts)
            present = wide.notna().to_numpy()
            share = present.mean(axis=0)
            regular = share >= cfg.regular_presence - (cfg.min_gap_buckets + 10) / max(nb, 1)
            # expected rows per bucket of each value by hour of day (absent = 0)
            by_hour = wide.fillna(0.0).groupby(wide.index.hour).mean()
            hour_of = all_ts.hour
            for j in np.flatnonzero(regular):
                for a, b in _runs(~present[:, j]):
                    if b - a < cfg.min_gap_buckets or (b - a) > 0.5 * nb:
                        continue
                    # With unit-level facts a rare value can miss an hour by chance:
                    # Poisson P(no row in the run) = exp(-expected rows) must be tiny.
                    expected = float(by_hour.iloc[:, j].reindex(hour_of[a:b]).sum())
                    if expected < cfg.min_expected_rows:
                        continue
                    if not any_present[a:b].any():
                        continue  # already reported as a gap of the whole feed
                    val = str(wide.columns[j])
                    start, end = all_ts[a], all_ts[b - 1] + m.grain_td
                    findings.append(QualityFinding(
                        check="completeness", severity="warning",
                        detail=(f"no rows for {dim}={val} from {start:%Y-%m-%d %H:%M} to "
                                f"{end:%Y-%m-%d %H:%M} UTC ({b - a} buckets); it reported in "
                                f"{share[j]:.0%} of buckets otherwise"),
                        start=start, end=end, slice={dim: val}, buckets=int(b - a),
                        puts_at_risk=(f"any drop in sums (e.g. {', '.join(m.measures)}) "
                                      f"for {dim}={val} and the slices containing it in that "
                                      "period", "ratios mixing that slice with others"),
                        sql=gap_sql))
        findings = _keep_coarsest_gaps(findings, m.hierarchies)

    # ---------------------------------------------------------------- duplicates
    meas = list(m.measures)
    dup_sql = _dup_sql(sp, bucket)
    counted = fast and qcounts.covered(con, sp, [("rows", "")])
    dup = (_duplicates_from_counts(con, sp, secs) if counted
           else con.execute(dup_sql).df())
    dup["ts"] = pd.to_datetime(dup["ts"], utc=True)
    excess = (dup["rows"] - dup["distinct_rows"]).to_numpy()
    unique_share = float((excess == 0).mean()) if len(dup) else 1.0
    if unique_share >= 0.9:  # facts are keyed by (ts, leaf): repeats are duplicates
        # a duplicated batch repeats a whole block; a few coincident unit rows do not count
        heavy = (excess >= 3) & (excess >= 0.01 * dup["rows"].to_numpy())
        for a, b in _runs(heavy):
            start, end = dup["ts"].iloc[a], dup["ts"].iloc[b - 1] + m.grain_td
            n = int(excess[a:b].sum())
            where = _duplicate_slice(con, sp, start, end, cfg)
            findings.append(QualityFinding(
                check="duplicates", severity="warning",
                detail=(f"{n} duplicated fact rows from {start:%Y-%m-%d %H:%M} to "
                        f"{end:%Y-%m-%d %H:%M} UTC ({b - a} buckets)"
                        + (" in " + ", ".join(f"{k}={v}" for k, v in where.items())
                           if where else "")
                        + "; the same leaf appears more than once per time stamp "
                        "(a batch loaded twice?)"),
                start=start, end=end, slice=where, buckets=int(b - a),
                puts_at_risk=(f"any rise in sums ({', '.join(meas)}) in that period",),
                sql=dup_sql))
    else:
        dup[[f"dup_{x}" for x in meas]] = 0.0  # unit-level facts: repeats are legitimate
    findings += _integrity(con, sp, bucket, fast)
    findings += _late_data(con, sp, bucket, cfg, counted)
    for f in skipped_batches or []:
        findings.append(QualityFinding(
            check="batches", severity="info",
            detail=f"{f} had the same content as a batch already stored; it was not loaded "
                   "again (no double counting)"))
    return QualityReport(findings=tuple(findings), duplicate_buckets=dup,
                         seconds=time.perf_counter() - t0)


def _duplicate_slice(con, sp: StoredPassport, start, end, cfg: QualityConfig) -> dict:
    """Where a duplicated block sits: every ``dim=value`` holding (nearly) all its repeats.

    A batch of APAC rows loaded twice puts all its excess rows under region=APAC
    and spreads them over the APAC countries; the values holding at least
    ``cfg.duplicate_concentration`` of the excess name the slice (``{}`` when the
    whole feed was repeated). One GROUPING SETS statement over the window.
    """
    m = sp.manifest
    dims = list(m.all_dimensions)
    if not dims:
        return {}
    codes = ", ".join(q(d) for d in dims)
    sets = ", ".join(f"({q(d)})" for d in dims)
    case_dim, case_val = grouping_labels(sp, dims)
    sql = (f"WITH k AS (SELECT ts, {codes}, COUNT(*) - 1 AS extra FROM {sp.schema}.events "
           f"WHERE ts >= ? AND ts < ? GROUP BY ALL HAVING COUNT(*) > 1),\n"
           f"g AS (SELECT {case_dim} AS dimension, {codes}, SUM(extra) AS extra FROM k "
           f"GROUP BY GROUPING SETS ({sets}))\n"
           f"SELECT dimension, {case_val} AS value, extra, SUM(extra) OVER "
           f"(PARTITION BY dimension) AS total FROM g")
    df = con.execute(sql, [start.to_pydatetime(), end.to_pydatetime()]).df()
    if df.empty:
        return {}
    top = df[df["extra"] >= cfg.duplicate_concentration * df["total"]]
    order = {d: i for i, d in enumerate(dims)}
    return {str(r.dimension): str(r.value)
            for r in sorted(top.itertuples(), key=lambda r: order[r.dimension])}


def _integrity(con, sp: StoredPassport, bucket: str, fast: bool = False
               ) -> list[QualityFinding]:
    """Impossible values: negative measures, numerators above their denominators.

    A ratio metric is a proportion when its numerator never exceeds its
    denominator in (almost) all rows of the history; then a row where it does
    (conversions above sessions) is impossible, not unusual.
    """
    m = sp.manifest
    out: list[QualityFinding] = []
    neg = ", ".join(f"count(*) FILTER (WHERE {q(x)} < 0) AS {q(x)}" for x in m.measures)
    pairs = [(k, s.numerator, s.denominator) for k, s in m.metrics.items() if s.kind == "ratio"]
    over = ", ".join(f"count(*) FILTER (WHERE {q(n)} > {q(d)}) AS {q('over_' + k)}"
                     for k, n, d in pairs)
    sql = f"SELECT count(*) AS n, {neg}{', ' + over if over else ''} FROM {sp.schema}.events"
    r = _integrity_from_counts(con, sp, pairs) if fast else None
    if r is None:
        r = con.execute(sql).df().iloc[0]
    n = int(r["n"]) or 1
    for x in m.measures:
        if r[x] > 0:
            out.append(QualityFinding(
                check="integrity", severity="warning",
                detail=f"{int(r[x])} rows have a negative {x}; measures are counts or amounts",
                puts_at_risk=(f"sums of {x} and every metric built on it",), sql=sql))
    for k, num, den in pairs:
        bad = int(r[f"over_{k}"])
        if 0 < bad <= 0.01 * n:
            out.append(QualityFinding(
                check="integrity", severity="warning",
                detail=(f"{bad} rows have {num} above {den}, impossible for the proportion "
                        f"{k}"), puts_at_risk=(f"{k} in the buckets holding those rows",),
                sql=sql))
    return out


def _late_data(con, sp: StoredPassport, bucket: str, cfg: QualityConfig,
               counted: bool = False) -> list[QualityFinding]:
    """Late data: batches carrying old time stamps, and an incomplete tail before the watermark.

    The watermark is the extraction time of the events (``sources.events.
    extracted_at``) or, without one, the newest time stamp. Buckets just before
    it that hold markedly fewer rows than the same hours of earlier weeks are
    probably still arriving; a drop there is not yet a divergence.
    """
    from ..store.duck import META

    m = sp.manifest
    out: list[QualityFinding] = []
    b = con.execute(f"SELECT batch, file, min_ts, max_ts FROM {META}.batches WHERE passport = ? "
                    f"AND active ORDER BY batch", [sp.name]).df()
    if len(b) > 1:
        prev_max = b["max_ts"].cummax().shift(1)
        late = b[b["min_ts"] < prev_max]
        for r in late.itertuples():
            out.append(QualityFinding(
                check="late_data", severity="info",
                detail=(f"batch {r.batch} ({r.file.split('/')[-1]}) holds rows from "
                        f"{pd.Timestamp(r.min_ts):%Y-%m-%d %H:%M}, before the end of earlier "
                        "batches: late-arriving data was merged"),
                puts_at_risk=("conclusions drawn before that batch arrived",)))
    sql = (f"SELECT {bucket} AS ts, COUNT(*) AS rows FROM {sp.schema}.events GROUP BY 1 "
           f"ORDER BY 1")
    if counted:  # the same rows per bucket, from the counts kept at ingest
        g = int(m.grain_td.total_seconds())
        rows = con.execute(f"SELECT b AS ts, SUM(rows)::BIGINT AS rows FROM {sp.schema}."
                           f"{q(qcounts.keys_table(g))} GROUP BY 1 ORDER BY 1").df()
    else:
        rows = con.execute(sql).df()
    if len(rows) < 24 * 8:
        return out
    rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
    s = rows.set_index("ts")["rows"]
    week = pd.Timedelta("7D")
    ref = pd.concat([s.shift(freq=week * k) for k in (1, 2)], axis=1).median(axis=1)
    tail = s.iloc[-6:]
    ratio = (tail / ref.reindex(tail.index)).fillna(1.0)
    short = ratio < 0.8
    if short.iloc[-1]:
        k = int(np.argmin(short.to_numpy()[::-1])) if not short.all() else len(short)
        start = tail.index[-k]
        wm = m.sources.get("events", {}).get("extracted_at") or \
            (tail.index[-1] + m.grain_td).isoformat()
        out.append(QualityFinding(
            check="late_data", severity="warning",
            detail=(f"the last {k} buckets (from {start:%Y-%m-%d %H:%M} UTC, watermark {wm}) "
                    f"hold {1 - ratio.iloc[-k:].mean():.0%} fewer rows than the same hours of "
                    "earlier weeks: data may still be arriving"),
            start=start, end=tail.index[-1] + m.grain_td, buckets=k,
            puts_at_risk=("any drop in the most recent buckets",), sql=sql))
    return out


def _presence_sql(sp: StoredPassport, dims: list[str], secs: int) -> str:
    """Rows per bucket and value of ``dims``, from the presence counts kept at ingest."""
    case_val = "CASE " + " ".join(
        f"WHEN p.dimension = {lit(d)} THEN (SELECT value FROM {sp.schema}.{q('dict_' + d)} "
        f"WHERE code = p.code)" for d in dims) + " END"
    names = ", ".join(lit(d) for d in dims)
    return (f"SELECT p.b AS ts, p.dimension, {case_val} AS value, p.rows FROM "
            f"(SELECT b, dimension, code, SUM(rows)::BIGINT AS rows FROM {sp.schema}."
            f"{q(qcounts.presence_table(secs))} WHERE dimension IN ({names}) "
            f"GROUP BY ALL) p")


def _dup_sql(sp: StoredPassport, bucket: str, where: str = "") -> str:
    """Rows, distinct ``(ts, leaf)`` keys and repeated volume per bucket, from the facts."""
    m = sp.manifest
    key = ", ".join(q(d) for d in m.all_dimensions)
    dup_cols = ", ".join(f"SUM({q(x)} * (1 - 1.0 / n)) AS {q('dup_' + x)}" for x in m.measures)
    return (f"WITH k AS (SELECT {bucket} AS b, ts, {key}, COUNT(*) AS n, "
            + ", ".join(f"SUM({q(x)}) AS {q(x)}" for x in m.measures)
            + f" FROM {sp.schema}.events{where} GROUP BY ALL)\n"
            f"SELECT b AS ts, SUM(n) AS rows, COUNT(*) AS distinct_rows, {dup_cols} "
            f"FROM k GROUP BY b ORDER BY b")


def _duplicates_from_counts(con, sp: StoredPassport, secs: int) -> pd.DataFrame:
    """The duplicate volume per bucket from the counts kept per batch at ingest.

    A bucket counted in one batch only is exact as stored; buckets that several
    batches share are counted again from the facts (their repeats may span batches).
    """
    meas = list(sp.manifest.measures)
    keys = f"{sp.schema}.{q(qcounts.keys_table(secs))}"
    dups = ", ".join(f"SUM({q('dup_' + x)}) AS {q('dup_' + x)}" for x in meas)
    df = con.execute(f"WITH s AS (SELECT b FROM {keys} GROUP BY b HAVING count(*) = 1)\n"
                     f"SELECT b AS ts, SUM(rows) AS rows, SUM(distinct_rows)::BIGINT AS "
                     f"distinct_rows, {dups} FROM {keys} WHERE b IN (SELECT b FROM s) "
                     f"GROUP BY b ORDER BY b").df()
    shared = con.execute(f"SELECT min(b), max(b), count(*) FROM (SELECT b FROM {keys} "
                         f"GROUP BY b HAVING count(*) > 1)").fetchone()
    if shared[2]:
        bucket = f"time_bucket(INTERVAL '{secs} seconds', ts)"
        grain = pd.Timedelta(seconds=secs).to_pytimedelta()
        where = (f" WHERE ts >= ? AND ts < ? AND {bucket} IN (SELECT b FROM {keys} "
                 f"GROUP BY b HAVING count(*) > 1)")
        more = con.execute(_dup_sql(sp, bucket, where), [shared[0], shared[1] + grain]).df()
        df = pd.concat([df, more], ignore_index=True).sort_values("ts", ignore_index=True)
    return df


def _integrity_from_counts(con, sp: StoredPassport, pairs: list) -> pd.Series | None:
    """The integrity counts (``n``, negatives per measure, ``over_<metric>``) kept at ingest;
    None when some batch lacks one of them."""
    m = sp.manifest
    checks = ([("rows", "")] + [("negative", x) for x in m.measures]
              + [("over", f"{n}>{d}") for _k, n, d in pairs])
    if not qcounts.covered(con, sp, checks):
        return None
    g = int(m.grain_td.total_seconds())
    got = {(c, col): int(n) for c, col, n in con.execute(
        f"SELECT \"check\", col, SUM(n) FROM {sp.schema}.{q(qcounts.counts_table(g))} "
        f"WHERE batch IN (SELECT batch FROM wb_meta.batches WHERE passport = ? AND active) "
        f"GROUP BY ALL", [sp.name]).fetchall()}
    r = {"n": got[("rows", "")], **{x: got[("negative", x)] for x in m.measures}}
    r.update({f"over_{k}": got[("over", f"{n}>{d}")] for k, n, d in pairs})
    return pd.Series(r, dtype=object)


def _keep_coarsest_gaps(findings: list[QualityFinding], hierarchies: dict) -> list[QualityFinding]:
    """Drop a gap of a fine value when a coarser value above it has the same gap."""
    gaps = [f for f in findings if f.check == "completeness" and f.slice]
    keep = []
    for f in gaps:
        (dim, _val), = f.slice.items()
        covered = any(
            g is not f and next(iter(g.slice)) != dim and g.start <= f.start and g.end >= f.end
            and (next(iter(g.slice)) in hierarchies and hierarchies[next(iter(g.slice))] == dim)
            for g in gaps)
        if not covered:
            keep.append(f)
    # A gap of one value in every dimension at once is one gap of the whole feed.
    return [f for f in findings if f.check == "completeness" and not f.slice] + keep + \
        [f for f in findings if f.check != "completeness"]


def correct_series(series: pd.DataFrame, report: QualityReport, metric: MetricSpec, *,
                   gap_fill: dict[tuple, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The metric series as it would be with the audited defects repaired.

    Parameters
    ----------
    series:
        ``ts, num, den`` per bucket (from :func:`workbench.store.metric_series`).
    gap_fill:
        For each gap finding (keyed by ``(start, tuple(sorted(slice.items())))``), the expected
        ``num, den`` of that slice per bucket (from its seasonal baseline).
    """
    out = series.set_index("ts")[["num", "den"]].copy()
    grain = out.index.to_series().diff().median() if len(out) > 1 else pd.Timedelta("1h")
    full = pd.date_range(out.index.min(), out.index.max(), freq=grain)
    out = out.reindex(full)
    dup = report.duplicate_buckets.set_index("ts").reindex(full).fillna(0.0)
    if f"dup_{metric.numerator}" in dup:
        out["num"] = out["num"] - dup[f"dup_{metric.numerator}"]
        if metric.kind == "ratio" and f"dup_{metric.denominator}" in dup:
            out["den"] = out["den"] - dup[f"dup_{metric.denominator}"]
    for f in report.of("completeness"):
        k = (f.start, tuple(sorted(f.slice.items())))
        fill = (gap_fill or {}).get(k)
        if fill is None:
            continue
        fill = fill.reindex(full).fillna(0.0)
        mask = (full >= f.start) & (full < f.end)
        out.loc[mask, "num"] = out.loc[mask, "num"].fillna(0.0) + fill.loc[mask, "num"]
        if metric.kind == "ratio":
            out.loc[mask, "den"] = out.loc[mask, "den"].fillna(0.0) + fill.loc[mask, "den"]
    if metric.kind == "sum":
        out["den"] = 1.0
    return out.rename_axis("ts").reset_index()
