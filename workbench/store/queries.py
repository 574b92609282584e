"""The query layer: every number the workbench shows comes from one SQL statement.

Each function returns a :class:`QueryResult` holding the frame *and* the exact
SQL that produced it, with literals inlined, so "show me the query" is a copy
and paste into any DuckDB session on the store file. Aggregation happens in
DuckDB over dictionary codes; decoding to strings happens on the (small)
aggregated result. No function loops over fact rows in Python.

Windows are half-open ``[start, end)`` in UTC.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import duckdb
import pandas as pd

from .._types import MetricSpec
from .duck import StoredPassport
from .sql import lit, q

Window = tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class QueryResult:
    """A result frame and the SQL that reproduces it."""

    frame: pd.DataFrame
    sql: str

    def to_frame(self) -> pd.DataFrame:
        return self.frame


def _ts(t) -> str:
    t = pd.Timestamp(t)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return f"TIMESTAMPTZ {lit(t.tz_convert('UTC').strftime('%Y-%m-%d %H:%M:%S+00'))}"


def _in_window(w: Window) -> str:
    return f"(ts >= {_ts(w[0])} AND ts < {_ts(w[1])})"


def filter_sql(sp: StoredPassport, filt: dict | None) -> str:
    """A WHERE fragment for ``{dim: value | [values]}`` over dictionary codes."""
    if not filt:
        return "TRUE"
    dims = sp.manifest.all_dimensions
    parts = []
    for d, v in filt.items():
        if d not in dims:
            from ..errors import UsageError
            raise UsageError(f"'{d}' is not a dimension of {sp.name}; dimensions are: "
                             + ", ".join(dims))
        vals = v if isinstance(v, (list, tuple, set)) else [v]
        inlist = ", ".join(lit(x) for x in vals)
        parts.append(f"{q(d)} IN (SELECT code FROM {sp.schema}.{q('dict_' + d)} "
                     f"WHERE value IN ({inlist}))")
    return " AND ".join(parts)


def _num_den(metric: MetricSpec) -> tuple[str, str]:
    num = f"SUM({q(metric.numerator)})"
    den = f"SUM({q(metric.denominator)})" if metric.kind == "ratio" else "COUNT(*) * 0 + 1.0"
    return num, den


def cardinalities(con: duckdb.DuckDBPyConnection, sp: StoredPassport,
                  dims: Iterable[str] | None = None) -> dict[str, int]:
    """Number of distinct values of each dimension (the size of its dictionary table)."""
    return {d: int(con.execute(f"SELECT count(*) FROM {sp.schema}.{q('dict_' + d)}")
                   .fetchone()[0]) for d in (dims or sp.manifest.all_dimensions)}


def dictionary(con: duckdb.DuckDBPyConnection, sp: StoredPassport, dimension: str
               ) -> pd.DataFrame:
    """The code -> value dictionary of one dimension (columns ``code``, ``value``)."""
    return con.execute(f"SELECT code, value FROM {sp.schema}.{q('dict_' + dimension)}").df()


def search_values(con: duckdb.DuckDBPyConnection, sp: StoredPassport, dimension: str,
                  tokens: Sequence[str], limit: int) -> list[tuple[str, int]]:
    """Values of ``dimension`` whose ``d = v d=v`` text holds every token, from its dictionary.

    One query on the dimension's dictionary table (its distinct values), so a search in
    a dimension of a million values neither scans nor holds them in Python: DuckDB's
    ``contains`` with the tokens as parameters, at most ``limit`` rows. Ranked by the
    number of tokens hitting ``d=v`` (returned with each value), then values starting
    with the longest token, then alphabetically.
    """
    head = "lower(? || '=' || value)"
    text = "lower(? || ' = ' || value || ' ' || ? || '=' || value)"
    where = " AND ".join(f"contains({text}, ?)" for _ in tokens)
    strong = " + ".join(f"contains({head}, ?)::INTEGER" for _ in tokens)
    sql = (f"SELECT value, {strong} AS strong FROM {q(sp.schema)}.{q('dict_' + dimension)} "
           f"WHERE {where} ORDER BY strong DESC, starts_with(lower(value), ?) DESC, value "
           "LIMIT ?")
    params = [x for t in tokens for x in (dimension, t)]
    params += [x for t in tokens for x in (dimension, dimension, t)]
    params += [max(tokens, key=len), int(limit)]
    return [(str(v), int(n)) for v, n in con.execute(sql, params).fetchall()]


def grouping_labels(sp: StoredPassport, dims: Sequence[str], alias: str = "g") -> tuple[str, str]:
    """SQL naming each GROUPING SETS row by its dimension and decoded value.

    Returns ``(case_dim, case_val)``: ``case_dim`` goes in the grouped SELECT
    (the dimension whose code is grouped), ``case_val`` in the outer SELECT over
    ``alias`` (the value behind that code, from the dimension's dictionary).
    """
    case_dim = "CASE " + " ".join(
        f"WHEN GROUPING({q(d)}) = 0 THEN {lit(d)}" for d in dims) + " END"
    case_val = "CASE " + " ".join(
        f"WHEN {alias}.dimension = {lit(d)} THEN (SELECT value FROM {sp.schema}."
        f"{q('dict_' + d)} WHERE code = {alias}.{q(d)})" for d in dims) + " END"
    return case_dim, case_val


def metric_series(con: duckdb.DuckDBPyConnection, sp: StoredPassport, metric: MetricSpec, *,
                  filter: dict | None = None, negate: bool = False, start=None,
                  end=None) -> QueryResult:
    """Metric by time bucket for one slice: columns ``ts, num, den, rows, value``.

    One statement: a filter on dictionary codes and a GROUP BY time bucket.
    Buckets with no rows are absent (missing data stays visible as missing).
    ``negate=True`` selects everything *outside* the slice (the unexposed group
    of a scoped change).
    """
    flt = filter_sql(sp, filter)
    if not filter and not negate and start is None and end is None:
        found = _total_from_aggregates(con, sp, metric)
        if found is not None:
            return found
    df, sql = _bucketed(con, sp, metric, f"NOT ({flt})" if negate else flt, start, end)
    df["value"] = df["num"] / df["den"] if metric.kind == "ratio" else df["num"]
    return QueryResult(df, sql)


def metric_series_by(con: duckdb.DuckDBPyConnection, sp: StoredPassport, metric: MetricSpec,
                     dimension: str, *, filter: dict | None = None) -> QueryResult:
    """Metric by time bucket and value of ``dimension`` inside the slice ``filter``.

    One statement; the siblings of a slice hour by hour (what small-cell suppression of
    timelines compares, :mod:`workbench.ui.released`). Columns ``ts, value, num, den,
    rows``; ``value`` is the dimension's value as text.
    """
    df, sql = _bucketed(con, sp, metric, filter_sql(sp, filter), None, None,
                        extra=(q(dimension), "code"))
    dt = dictionary(con, sp, dimension)
    names = pd.Series(dt["value"].astype(str).to_numpy(dtype=object), index=dt["code"].to_numpy())
    df.insert(1, "value", df.pop("code").map(names))
    return QueryResult(df, sql)


def _total_from_aggregates(con, sp: StoredPassport, metric: MetricSpec) -> QueryResult | None:
    """The total series from the sums kept per batch and bucket at ingest; None when
    the store has none (written before they existed and not ingested since)."""
    from .duck import agg_table

    table = agg_table(sp.manifest)
    n = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                    "AND table_name = ?", [sp.schema, table]).fetchone()[0]
    if not n or not con.execute(f"SELECT count(*) > 0 FROM {sp.schema}.{q(table)}").fetchone()[0]:
        return None
    num, den = _num_den(metric)
    sql = (f"SELECT b AS ts, {num} AS num, {den} AS den, SUM(rows) AS rows\n"
           f"FROM {sp.schema}.{q(table)}\nGROUP BY 1 ORDER BY 1")
    df = con.execute(sql).df()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["num"] = df["num"].astype(float)
    df["den"] = df["den"].astype(float)
    df["rows"] = df["rows"].astype("int64")
    df["value"] = df["num"] / df["den"] if metric.kind == "ratio" else df["num"]
    return QueryResult(df, sql)


def _bucketed(con, sp: StoredPassport, metric: MetricSpec, where: str, start, end,
              extra: tuple[str, str] | None = None) -> tuple[pd.DataFrame, str]:
    """``ts, [extra], num, den, rows`` per time bucket (and ``extra`` group) for rows in ``where``."""
    secs = int(sp.manifest.grain_td.total_seconds())
    num, den = _num_den(metric)
    conds = [where]
    if start is not None:
        conds.append(f"ts >= {_ts(start)}")
    if end is not None:
        conds.append(f"ts < {_ts(end)}")
    extra_sel = f"{extra[0]} AS {extra[1]}, " if extra else ""
    groups = "1, 2" if extra else "1"
    sql = (f"SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS ts, {extra_sel}{num} AS num, "
           f"{den} AS den, COUNT(*) AS rows\nFROM {sp.schema}.events\n"
           f"WHERE {' AND '.join(conds)}\nGROUP BY {groups} ORDER BY {groups}")
    df = con.execute(sql).df()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["num"] = df["num"].astype(float)
    df["den"] = df["den"].astype(float)
    return df, sql


def metric_panel(con: duckdb.DuckDBPyConnection, sp: StoredPassport, metric: MetricSpec,
                 scopes: Sequence[dict], *, start=None, end=None) -> QueryResult:
    """Metric by time bucket for every *atom* of a set of scopes, in one statement.

    An atom is the set of rows sharing one pattern of membership in the scopes:
    ``atom`` is the bit mask ``sum(2**k for scope k containing the row)``. With
    scopes ``{platform: ios}`` and ``{platform: ios, app_version: 5.2}`` the atoms
    are 0 (not iOS), 1 (iOS but not 5.2) and 3 (iOS 5.2). Columns ``ts, atom,
    num, den, rows``; the panel for a joint model of concurrent changes.
    """
    if not scopes or len(scopes) > 16:
        from ..errors import UsageError
        raise UsageError(f"metric_panel takes 1 to 16 scopes; got {len(scopes)}")
    bits = " + ".join(f"(CASE WHEN {filter_sql(sp, f)} THEN {2 ** k} ELSE 0 END)"
                      for k, f in enumerate(scopes))
    df, sql = _bucketed(con, sp, metric, "TRUE", start, end, extra=(bits, "atom"))
    df["atom"] = df["atom"].astype(int)
    return QueryResult(df, sql)


def _window_sums(metric: MetricSpec, obs: Window, base: Sequence[Window]) -> tuple[str, str]:
    k = max(len(base), 1)
    obs_c = _in_window(obs)
    base_c = " OR ".join(_in_window(w) for w in base) or "FALSE"
    cols = [f"SUM({q(metric.numerator)}) FILTER (WHERE {obs_c}) AS obs_num",
            f"SUM({q(metric.numerator)}) FILTER (WHERE {base_c}) / {k} AS base_num"]
    if metric.kind == "ratio":
        cols += [f"SUM({q(metric.denominator)}) FILTER (WHERE {obs_c}) AS obs_den",
                 f"SUM({q(metric.denominator)}) FILTER (WHERE {base_c}) / {k} AS base_den"]
    else:
        cols += ["1.0 AS obs_den", "1.0 AS base_den"]
    cols += [f"COUNT(*) FILTER (WHERE {obs_c}) AS obs_rows",
             f"COUNT(*) FILTER (WHERE {base_c}) / {k} AS base_rows"]
    where = " OR ".join([obs_c] + [_in_window(w) for w in base])
    return ",\n       ".join(cols), where


def leaves(con: duckdb.DuckDBPyConnection, sp: StoredPassport, metric: MetricSpec, *,
           obs: Window, base: Sequence[Window], dimensions: Iterable[str] | None = None,
           filter: dict | None = None) -> QueryResult:
    """Observed and baseline sums per finest combination of ``dimensions``.

    ``base`` windows are averaged (e.g. the same hours one and two weeks
    earlier), so ``base_*`` is an expectation comparable with ``obs_*``.
    """
    dims = list(dimensions or sp.manifest.all_dimensions)
    sums, where = _window_sums(metric, obs, base)
    codes = ", ".join(q(d) for d in dims)
    dec = ", ".join(f"{q('k_' + d)}.value AS {q(d)}" for d in dims)
    joins = " ".join(f"JOIN {sp.schema}.{q('dict_' + d)} {q('k_' + d)} "
                     f"ON {q('k_' + d)}.code = g.{q(d)}" for d in dims)
    sql = (f"WITH g AS (\nSELECT {codes},\n       {sums}\nFROM {sp.schema}.events\n"
           f"WHERE ({where}) AND {filter_sql(sp, filter)}\nGROUP BY {codes})\n"
           f"SELECT {dec}, g.* EXCLUDE ({codes}) FROM g {joins}")
    df = con.execute(sql).df()
    for c in ("obs_num", "base_num", "obs_den", "base_den", "obs_rows", "base_rows"):
        df[c] = df[c].astype(float).fillna(0.0)
    for d in dims:
        df[d] = df[d].astype("category")
    return QueryResult(df, sql)


@dataclass(frozen=True)
class RowsResult:
    """A lazy DuckDB relation over fact rows, the SQL behind it and the dimension labels.

    Nothing is computed until the relation is queried: a consumer aggregates it the
    way it needs (``workbench.localize.localize`` screens its values with GROUPING
    SETS and pools the rest, never grouping to leaves).
    """

    relation: duckdb.DuckDBPyRelation
    sql: str
    labels: dict[str, pd.Series]


def window_rows(con: duckdb.DuckDBPyConnection, sp: StoredPassport, metric: MetricSpec, *,
                obs: Window, base: Sequence[Window], dimensions: Iterable[str] | None = None,
                filter: dict | None = None) -> RowsResult:
    """Fact rows of the observed and baseline windows, not grouped: the input of
    :func:`leaves` before its ``GROUP BY``.

    Columns: the dimension codes, ``obs_num``, ``base_num`` (and ``obs_den``,
    ``base_den`` for a ratio metric). A row outside a window contributes 0 to that
    window's columns; ``base`` windows are averaged as in :func:`leaves`, so the
    sums of any group of rows equal the columns :func:`leaves` gives for it.
    ``labels`` maps each dimension's codes to its values (the dictionary tables).
    """
    dims = list(dimensions or sp.manifest.all_dimensions)
    k = max(len(base), 1)
    obs_c = _in_window(obs)
    base_c = " OR ".join(_in_window(w) for w in base) or "FALSE"

    def cols(col: str, name: str) -> list[str]:
        return [f"CASE WHEN {obs_c} THEN {q(col)} ELSE 0 END::DOUBLE AS obs_{name}",
                f"CASE WHEN {base_c} THEN {q(col)} / {k} ELSE 0 END::DOUBLE AS base_{name}"]

    meas = cols(metric.numerator, "num")
    if metric.kind == "ratio":
        meas += cols(metric.denominator, "den")
    where = " OR ".join([obs_c] + [_in_window(w) for w in base])
    sql = (f"SELECT {', '.join(q(d) for d in dims)},\n       {', '.join(meas)}\n"
           f"FROM {sp.schema}.events\nWHERE ({where}) AND {filter_sql(sp, filter)}")
    labels = {}
    for d in dims:
        dt = con.execute(f"SELECT code, value FROM {sp.schema}.{q('dict_' + d)}").df()
        labels[d] = pd.Series(dt["value"].to_numpy(dtype=object), index=dt["code"].to_numpy())
    return RowsResult(con.sql(sql), sql, labels)


def dimension_breakdown(con: duckdb.DuckDBPyConnection, sp: StoredPassport,
                        metric: MetricSpec, *, obs: Window, base: Sequence[Window],
                        dimensions: Iterable[str] | None = None) -> QueryResult:
    """The metric for every value of every dimension over a window, in one statement.

    ``GROUP BY GROUPING SETS ((d1), (d2), ...)`` computes all single-dimension
    group-bys in one scan. Columns: ``dimension, value, obs_num, base_num,
    obs_den, base_den, obs_rows, base_rows``.
    """
    dims = list(dimensions or sp.manifest.all_dimensions)
    sums, where = _window_sums(metric, obs, base)
    sets = ", ".join(f"({q(d)})" for d in dims)
    codes = ", ".join(q(d) for d in dims)
    case_dim, case_val = grouping_labels(sp, dims)
    sql = (f"WITH g AS (\nSELECT {case_dim} AS dimension, {codes},\n       {sums}\n"
           f"FROM {sp.schema}.events\nWHERE {where}\nGROUP BY GROUPING SETS ({sets}))\n"
           f"SELECT g.dimension, {case_val} AS value, g.* EXCLUDE (dimension, {codes}) "
           f"FROM g ORDER BY 1, 2")
    df = con.execute(sql).df()
    for c in ("obs_num", "base_num", "obs_den", "base_den", "obs_rows", "base_rows"):
        df[c] = df[c].astype(float).fillna(0.0)
    return QueryResult(df, sql)


def rows_by_bucket(con: duckdb.DuckDBPyConnection, sp: StoredPassport, dimension: str,
                   *, start=None, end=None) -> QueryResult:
    """Fact rows and distinct leaves per time bucket and value of one dimension.

    The raw material of completeness, gap and duplicate checks.
    """
    secs = int(sp.manifest.grain_td.total_seconds())
    dims = sp.manifest.all_dimensions
    where = ["TRUE"]
    if start is not None:
        where.append(f"ts >= {_ts(start)}")
    if end is not None:
        where.append(f"ts < {_ts(end)}")
    key = " || '|' || ".join(f"CAST({q(d)} AS VARCHAR)" for d in dims)
    sql = (f"SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS ts, "
           f"(SELECT value FROM {sp.schema}.{q('dict_' + dimension)} WHERE code = e.{q(dimension)}) "
           f"AS value, COUNT(*) AS rows, COUNT(DISTINCT ts || '|' || {key}) AS distinct_rows\n"
           f"FROM {sp.schema}.events e WHERE {' AND '.join(where)}\nGROUP BY 1, e.{q(dimension)} "
           f"ORDER BY 1, 2")
    df = con.execute(sql).df()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return QueryResult(df, sql)


def time_range(con: duckdb.DuckDBPyConnection, sp: StoredPassport) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last stored time stamp; a located error when pandas cannot hold them
    (a store ingested before passports checked their time range, issue 19)."""
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM {sp.schema}.events").fetchone()
    try:
        return pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        from ..errors import StoreError

        raise StoreError(f"{sp.name}: the store holds time stamps from {lo} to {hi}, outside "
                         "the range the workbench computes with (1677..2262); ingest the "
                         "passport again (validate now refuses such stamps)") from None


def slice_series(con: duckdb.DuckDBPyConnection, sp: StoredPassport, metric: MetricSpec, *,
                 dimensions: Iterable[str] | None = None, max_cardinality: int = 60,
                 start=None, end=None) -> QueryResult:
    """Metric by time bucket for every value of every dimension, in one statement.

    ``GROUP BY GROUPING SETS ((bucket, d1), (bucket, d2), ...)``; dimensions with
    more than ``max_cardinality`` values are left out (scan them by
    localization instead). Columns: ``dimension, value, ts, num, den, rows``.
    """
    cards = cardinalities(con, sp, dimensions)
    dims = [d for d, n in cards.items() if n <= max_cardinality]
    secs = int(sp.manifest.grain_td.total_seconds())
    num, den = _num_den(metric)
    where = ["TRUE"]
    if start is not None:
        where.append(f"ts >= {_ts(start)}")
    if end is not None:
        where.append(f"ts < {_ts(end)}")
    codes = ", ".join(q(d) for d in dims)
    sets = ", ".join(f"(b, {q(d)})" for d in dims)
    case_dim, case_val = grouping_labels(sp, dims)
    sql = (f"WITH g AS (SELECT time_bucket(INTERVAL '{secs} seconds', ts) AS b, {case_dim} AS "
           f"dimension, {codes}, {num} AS num, {den} AS den, COUNT(*) AS rows\n"
           f"FROM {sp.schema}.events WHERE {' AND '.join(where)}\n"
           f"GROUP BY GROUPING SETS ({sets}))\n"
           f"SELECT g.dimension, {case_val} AS value, g.b AS ts, g.num, g.den, g.rows FROM g "
           f"ORDER BY 1, 2, 3")
    if not dims:
        return QueryResult(pd.DataFrame(columns=["dimension", "value", "ts", "num", "den", "rows"]),
                           "")
    df = con.execute(sql).df()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["num"] = df["num"].astype(float)
    df["den"] = df["den"].astype(float)
    return QueryResult(df, sql)
