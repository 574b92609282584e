"""Quality counts kept at ingest, next to the per-grain aggregates (issue 18, item 2).

The data-quality audit (:mod:`workbench.quality.audit`) needs, per time bucket,
how many rows each dimension value brought (gaps), how many rows repeat a time
stamp and leaf and the volume of those repeats (duplicates), and per batch how
many rows carry impossible values (integrity). Each is a sum over the rows of a
batch, so it is computed once when the batch is stored, in the same
transaction, and the audit adds up these small tables instead of re-scanning
every unit row at every investigation. A replaced batch's counts are deleted
with it, like its aggregates, so the sums stay exact.

Tables (``<schema>`` is the passport's, ``<g>`` the grain in seconds):

- ``qc_presence_<g>s``: ``batch, b, dimension, code, rows, <measure>...`` (rows and
  sums of each value per bucket; the baseline profile reads them too), for every dimension
  whose dictionary holds at most :data:`PRESENCE_MAX_VALUES` values when the
  batch is counted (dictionaries only grow, so a dimension small enough for the
  audit's gap scan was small enough at every earlier batch).
- ``qc_keys_<g>s``: ``batch, b, rows, distinct_rows, dup_<measure>...``: rows,
  distinct ``(ts, leaf)`` keys and the repeated volume ``sum(x * (1 - 1/n))``
  per bucket, within the batch. A bucket two batches share needs their rows
  together; the audit re-counts only those buckets from the facts.
- ``qc_counts_<g>s``: ``batch, check, col, n``: ``rows``; ``negative`` per measure;
  ``over`` per ``numerator>denominator`` pair of the ratio metrics; ``presence``
  per dimension counted in ``qc_presence``. The audit uses a count only when
  every active batch has it, and otherwise scans the facts as before.

These are the per-partition metrics of Schelter et al., "Automating Large-Scale
Data Quality Verification" (VLDB 2018), section 4: quality statistics that are
sums over partitions are computed incrementally as partitions arrive.
"""
from __future__ import annotations

import duckdb

from .sql import META, lit, q

#: Dimensions with more values than this get no presence counts (the audit's gap
#: scan skips them: ``QualityConfig.max_cardinality``, 500 by default).
PRESENCE_MAX_VALUES = 500


def presence_table(grain_secs: int) -> str:
    return f"qc_presence_{grain_secs}s"


def keys_table(grain_secs: int) -> str:
    return f"qc_keys_{grain_secs}s"


def counts_table(grain_secs: int) -> str:
    return f"qc_counts_{grain_secs}s"


def ratio_pairs(m) -> list[tuple[str, str]]:
    """The distinct ``(numerator, denominator)`` pairs of the manifest's ratio metrics."""
    seen: list[tuple[str, str]] = []
    for s in m.metrics.values():
        if s.kind == "ratio" and (s.numerator, s.denominator) not in seen:
            seen.append((s.numerator, s.denominator))
    return seen


def create_tables(con: duckdb.DuckDBPyConnection, m, schema: str) -> None:
    """Create the three tables of one passport if missing."""
    g = int(m.grain_td.total_seconds())
    sums = "".join(f", {q(x)} DOUBLE" for x in m.measures)
    con.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{q(presence_table(g))} (batch INTEGER, "
                f"b TIMESTAMPTZ, dimension VARCHAR, code INTEGER, rows BIGINT{sums})")
    dups = ", ".join(f"{q('dup_' + x)} DOUBLE" for x in m.measures)
    con.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{q(keys_table(g))} (batch INTEGER, "
                f"b TIMESTAMPTZ, rows BIGINT, distinct_rows BIGINT, {dups})")
    con.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{q(counts_table(g))} (batch INTEGER, "
                "\"check\" VARCHAR, col VARCHAR, n BIGINT)")


def delete_batches(con, m, schema: str, where: str, params: list | None = None) -> None:
    """Remove the counts of the batches in ``where`` (an SQL condition on ``batch``)."""
    g = int(m.grain_td.total_seconds())
    for t in (presence_table(g), keys_table(g), counts_table(g)):
        con.execute(f"DELETE FROM {schema}.{q(t)} WHERE {where}", params or [])


def count_batches(con, m, schema: str, where: str) -> None:
    """Count the facts of the batches in ``where`` into the three tables.

    ``where`` is an SQL condition on the ``batch`` column of ``<schema>.events``
    built by the store (batch numbers, never user text).
    """
    g = secs = int(m.grain_td.total_seconds())
    bucket = f"time_bucket(INTERVAL '{secs} seconds', ts)"
    ev = f"{schema}.events"
    dims = list(m.all_dimensions)
    meas = list(m.measures)
    # presence of each small dimension's values per bucket
    small = [d for d in dims if con.execute(
        f"SELECT count(*) FROM {schema}.{q('dict_' + d)}").fetchone()[0] <= PRESENCE_MAX_VALUES]
    if small:
        sets = ", ".join(f"(batch, b, {q(d)})" for d in small)
        case_dim = "CASE " + " ".join(f"WHEN GROUPING({q(d)}) = 0 THEN {lit(d)}"
                                      for d in small) + " END"
        case_code = "CASE " + " ".join(f"WHEN GROUPING({q(d)}) = 0 THEN {q(d)}"
                                       for d in small) + " END"
        cols = ", ".join(q(d) for d in small)
        xs = "".join(f", {q(x)}" for x in meas)
        sx = "".join(f", SUM({q(x)})" for x in meas)
        con.execute(f"INSERT INTO {schema}.{q(presence_table(g))} "
                    f"SELECT batch, b, {case_dim}, {case_code}, COUNT(*){sx} FROM "
                    f"(SELECT batch, {bucket} AS b, {cols}{xs} FROM {ev} WHERE {where}) "
                    f"GROUP BY GROUPING SETS ({sets})")
    # repeats of (ts, leaf) per bucket: one hash table entry per distinct row, so in spans
    # of whole buckets of at most KEYS_CHUNK rows each (bounded memory; a bucket is never
    # split, and a key, which holds its time stamp, never spans two spans)
    key = ", ".join(q(d) for d in dims)
    sums = "".join(f", SUM({q(x)}) AS {q(x)}" for x in meas)
    dup = "".join(f", SUM({q(x)} * (1 - 1.0 / n))" for x in meas)
    n, lo, hi = con.execute(f"SELECT count(*), epoch_us(time_bucket(INTERVAL '{secs} seconds', "
                            f"min(ts))), epoch_us(max(ts)) FROM {ev} WHERE {where}").fetchone()
    for a, b in _spans(n, lo, hi, g):
        con.execute(f"INSERT INTO {schema}.{q(keys_table(g))} "
                    f"SELECT batch, b, SUM(n), COUNT(*){dup} FROM "
                    f"(SELECT batch, {bucket} AS b, ts, {key}, COUNT(*) AS n{sums} FROM {ev} "
                    f"WHERE ({where}) AND epoch_us(ts) >= ? AND epoch_us(ts) < ? GROUP BY ALL) "
                    f"GROUP BY batch, b", [a, b])
    # per-batch counts: rows, negatives, numerators above denominators, presence coverage
    parts = ["SELECT batch, 'rows' AS c, '' AS col, count(*) AS n FROM e GROUP BY batch"]
    parts += [f"SELECT batch, 'negative', {lit(x)}, count(*) FILTER (WHERE {q(x)} < 0) "
              "FROM e GROUP BY batch" for x in meas]
    parts += [f"SELECT batch, 'over', {lit(n + '>' + d)}, count(*) FILTER (WHERE "
              f"{q(n)} > {q(d)}) FROM e GROUP BY batch" for n, d in ratio_pairs(m)]
    parts += [f"SELECT DISTINCT batch, 'presence', {lit(d)}, 1 FROM e" for d in small]
    need = ", ".join(dict.fromkeys(["batch"] + [q(x) for x in meas]))
    con.execute(f"INSERT INTO {schema}.{q(counts_table(g))} WITH e AS (SELECT {need} FROM {ev} "
                f"WHERE {where}) " + " UNION ALL ".join(parts))


#: Rows per span of the repeat count (its hash table holds one entry per distinct row).
KEYS_CHUNK = 2_000_000


def _spans(n: int, lo: int | None, hi: int | None, grain_secs: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans of whole buckets, in microseconds since the epoch, covering
    ``[lo, hi]`` (``lo``: the start of the first bucket), about ``n / KEYS_CHUNK`` of them
    (rows as if even over time). Integers: a stray stamp past year 9999 in an old store
    has no Python datetime."""
    if not n or lo is None:
        return []
    g = grain_secs * 1_000_000
    last = int(hi) + 1
    k = max(1, -(-int(n) // KEYS_CHUNK))
    nb = max(1, -(-(last - int(lo)) // g))
    step = g * max(1, -(-nb // k))
    return [(t, min(t + step, last)) for t in range(int(lo), last, step)]


def has_tables(con, schema: str, grain_secs: int) -> bool:
    names = {presence_table(grain_secs), keys_table(grain_secs), counts_table(grain_secs)}
    got = con.execute("SELECT table_name FROM information_schema.tables WHERE "
                      "table_schema = ?", [schema]).fetchall()
    return names <= {r[0] for r in got}


def covered(con, sp, checks: list[tuple[str, str]]) -> bool:
    """Whether every active batch holding rows has each ``(check, col)`` count."""
    if not checks:
        return True
    g = int(sp.manifest.grain_td.total_seconds())
    vals = ", ".join("(?, ?)" for _ in checks)
    params = [x for c in checks for x in c]
    active = (f"SELECT batch FROM {META}.batches WHERE passport = ? AND active AND rows > 0")
    got = con.execute(
        f"SELECT count(*) FROM (SELECT \"check\", col, count(DISTINCT batch) AS k FROM "
        f"{sp.schema}.{q(counts_table(g))} WHERE (\"check\", col) IN (VALUES {vals}) AND batch IN "
        f"({active}) GROUP BY ALL) WHERE k = ({active.replace('SELECT batch', 'SELECT count(*)')})",
        params + [sp.name, sp.name]).fetchone()[0]
    return int(got) == len(checks)
