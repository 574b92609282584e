"""Load and validate a passport directory (passport v1, ``shared/spec/passport.md``).

Facts (``events``) can be large, so they are validated by DuckDB scans over the
files themselves (one pass counting bad values per column, a second only to
locate the first bad row); they are never materialized in pandas here. The
change log and experiment assignments are small and are parsed with pandas.

Every error is one :class:`~workbench.errors.PassportError` naming the file,
the row (1-based data row; for CSV the line number too) or the column, and
what was expected. Nothing is written anywhere while loading.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

from ..errors import PassportError
from ..store.sql import bound_connection
from ..store.sql import lit as _lit
from ..store.sql import q as _q
from .manifest import MANIFEST, Manifest, parse_manifest
from .trust import trusted_check, validation_fingerprint

NULL_VALUE = "(null)"
CHANGE_KINDS = ("deploy", "flag", "config", "infra", "experiment", "external")
CHANGE_REQUIRED = ("id", "ts", "kind", "target", "description", "scope")
EXPERIMENT_REQUIRED = ("unit_id", "experiment", "variant")
_TABLE_EXTS = {
    "events": (".parquet", ".csv"),
    "changes": (".parquet", ".csv", ".jsonl"),
    "experiments": (".parquet", ".csv"),
    "logs": (".jsonl",),
    "traces": (".jsonl",),
}


@dataclass(frozen=True)
class FileProvenance:
    """Where one passport file came from and what was done to it."""

    table: str
    path: str
    format: str
    sha256: str
    rows: int
    bytes: int
    origin: str | None = None
    extracted_at: str | None = None
    transform: tuple[str, ...] = ()
    loaded_at: str = ""

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["transform"] = list(self.transform)
        return d


@dataclass(frozen=True)
class Passport:
    """A validated passport: manifest, event files, change log, provenance.

    ``events`` stay on disk; :meth:`events_sql` gives the normalized SELECT a
    DuckDB connection runs to read them (UTC ``TIMESTAMPTZ``, dimension values as
    strings with ``(null)`` for empty, measures as DOUBLE).
    """

    directory: Path
    manifest: Manifest
    event_files: tuple[Path, ...]
    changes: pd.DataFrame
    experiments: pd.DataFrame | None
    provenance: tuple[FileProvenance, ...]
    graph: dict | None = None
    extra_files: dict[str, Path] = field(default_factory=dict)
    #: Per event file (resolved path): ``bytes``, ``mtime_ns``, ``sha256``, ``rows``,
    #: ``fingerprint`` and ``trusted`` (True when its check was taken from a store's record,
    #: :func:`load_passport` ``trusted=``). The store records them after an ingest.
    file_checks: dict[str, dict] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    def events_sql(self, files: tuple[Path, ...] | None = None) -> str:
        """A SELECT over event files giving normalized columns (see class doc)."""
        return _normalized_select(self.manifest, files or self.event_files)

    def provenance_for(self, table: str) -> list[FileProvenance]:
        return [p for p in self.provenance if p.table == table]

    def to_dict(self) -> dict:
        return {"name": self.name, "directory": str(self.directory),
                "manifest": self.manifest.to_dict(),
                "provenance": [p.to_dict() for p in self.provenance]}


# --------------------------------------------------------------------------- helpers
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rel(directory: Path, path: Path) -> str:
    try:
        return str(path.relative_to(directory))
    except ValueError:
        return str(path)


def env_data_roots() -> tuple[Path, ...]:
    """Folders outside a passport its ``files:`` entries may point into.

    Listed in the environment variable ``WORKBENCH_DATA_ROOTS`` (absolute paths
    separated by ``os.pathsep``); none by default, so a passport reads only what
    lies inside its own folder.
    """
    raw = os.environ.get("WORKBENCH_DATA_ROOTS", "")
    return tuple(Path(r).resolve() for r in raw.split(os.pathsep) if r.strip())


def _contained(directory: Path, path: Path, key: str,
               roots: tuple[Path, ...] = ()) -> Path:
    """``path`` resolved (symlinks followed) if it lies in the passport folder or a data root.

    Anything else (``..`` out of the folder, an absolute path, a symlink leaving
    it) is a located error naming ``key`` (``files.events``, ``events.csv``...).
    """
    real = path.resolve()
    allowed = (directory.resolve(),) + tuple(Path(r).resolve() for r in roots)
    for root in allowed + env_data_roots():
        if real.is_relative_to(root):
            return path
    raise PassportError(f"{key} points outside the passport folder (to {real}); expected a "
                        "file inside it. To read from another folder, list it in "
                        "WORKBENCH_DATA_ROOTS", file=MANIFEST if key.startswith("key ")
                        else str(directory))


def _find_table_files(directory: Path, manifest: Manifest, table: str,
                      roots: tuple[Path, ...] = ()) -> list[Path]:
    exts = _TABLE_EXTS[table]
    if table in manifest.files:
        p = directory / manifest.files[table]
        _contained(directory, p, f"key 'files.{table}' ({manifest.files[table]})", roots)
        if not p.exists():
            raise PassportError(f"key 'files.{table}' names {manifest.files[table]}, "
                                f"which does not exist in {directory}", file=MANIFEST)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in exts and q.is_file())
            for q in found:
                _contained(directory, q, f"key 'files.{table}' ({_rel(directory, q)})", roots)
            if not found:
                raise PassportError(f"key 'files.{table}' names the folder "
                                    f"{manifest.files[table]}, which holds no "
                                    f"{'/'.join(exts)} file", file=MANIFEST)
            return found
        if p.suffix not in exts:
            raise PassportError(f"key 'files.{table}': {manifest.files[table]} has an "
                                f"unsupported format; expected {', '.join(exts)}",
                                file=MANIFEST)
        return [p]
    found = [directory / f"{table}{e}" for e in exts if (directory / f"{table}{e}").is_file()]
    if len(found) > 1:
        raise PassportError(f"several files for table '{table}': "
                            f"{', '.join(p.name for p in found)}; keep one", file=str(directory))
    if not found and table == "events" and (directory / "events").is_dir():
        found = sorted(q for q in (directory / "events").iterdir()
                       if q.suffix in exts and q.is_file())
    for q in found:
        _contained(directory, q, _rel(directory, q), roots)
    return found


def _raise_duckdb(exc: Exception, fname: str, fmt: str):
    msg = str(exc)
    m = re.search(r"CSV Error on Line: (\d+)", msg)
    if m:
        detail = ""
        m2 = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", msg)
        if m2:
            detail = (f"expected {m2.group(1)} fields, found {m2.group(2)} "
                      "(is the file truncated or a delimiter missing?)")
        else:
            detail = msg.splitlines()[0].replace("Invalid Input Error: ", "")
        raise PassportError(detail, file=f"{fname}, line {m.group(1)}") from None
    first = msg.splitlines()[0] if msg else type(exc).__name__
    raise PassportError(f"cannot be read as {fmt} (truncated or corrupt?): {first}",
                        file=fname) from None


def _csv_header(path: Path, fname: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            header = []
    if not header or not any(h.strip() for h in header):
        raise PassportError("the file is empty; expected a header line of column names",
                            file=fname)
    return [h.strip() for h in header]


def _source_sql(path: Path, fname: str) -> tuple[str, list[str], dict[str, str]]:
    """FROM-clause source for one file, its columns and their DuckDB types."""
    if path.stat().st_size == 0:
        raise PassportError("the file is empty (0 bytes)", file=fname)
    if path.suffix == ".csv":
        cols = _csv_header(path, fname)
        spec = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in cols) + "}"
        src = (f"read_csv({_lit(str(path))}, header=true, auto_detect=false, delim=',', "
               f"quote='\"', escape='\"', columns={spec}, strict_mode=true)")
        return src, cols, {c: "VARCHAR" for c in cols}
    src = f"read_parquet({_lit(str(path))})"
    con = _con()
    try:
        desc = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    except duckdb.Error as exc:
        _raise_duckdb(exc, fname, "Parquet")
    return src, [r[0] for r in desc], {r[0]: r[1] for r in desc}


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    return bound_connection(con)


def _ts_expr(col: str, typ: str) -> str:
    if typ.startswith("TIMESTAMP WITH TIME ZONE"):
        return _q(col)
    if typ.startswith("TIMESTAMP") or typ == "DATE":
        return f"CAST({_q(col)} AS TIMESTAMPTZ)"  # naive times are UTC (TimeZone=UTC)
    return f"TRY_CAST(CAST({_q(col)} AS VARCHAR) AS TIMESTAMPTZ)"


def _num_expr(col: str, typ: str) -> str:
    if typ in ("VARCHAR",) or typ.startswith("VARCHAR"):
        return f"TRY_CAST(NULLIF(TRIM({_q(col)}), '') AS DOUBLE)"
    return f"TRY_CAST({_q(col)} AS DOUBLE)"


def _dim_expr(col: str) -> str:
    return f"COALESCE(NULLIF(CAST({_q(col)} AS VARCHAR), ''), {_lit(NULL_VALUE)})"


def _normalized_select(manifest: Manifest, files: tuple[Path, ...]) -> str:
    parts = []
    for path in files:
        src, cols, types = _source_sql(path, path.name)
        sel = [f"{_ts_expr(manifest.time_column, types[manifest.time_column])} AS ts"]
        sel += [f"{_dim_expr(d)} AS {_q(d)}" for d in manifest.all_dimensions]
        sel += [f"COALESCE({_num_expr(m, types[m])}, 0.0) AS {_q(m)}" for m in manifest.measures]
        parts.append(f"SELECT {', '.join(sel)} FROM {src}")
    return " UNION ALL ".join(parts)


# --------------------------------------------------------------------------- events
def _validate_events_file(path: Path, directory: Path, manifest: Manifest) -> int:
    fname = _rel(directory, path)
    src, cols, types = _source_sql(path, fname)
    needed = ([manifest.time_column] + list(manifest.all_dimensions)
              + list(manifest.measures) + list(manifest.pii))
    for c in needed:
        if c not in cols:
            role = ("time_column" if c == manifest.time_column else
                    "dimensions" if c in manifest.dimensions else
                    "hierarchies" if c in manifest.hierarchies else
                    "measures" if c in manifest.measures else "pii")
            raise PassportError(f"has no column '{c}' named in {MANIFEST} {role}; "
                                f"columns are: {', '.join(cols)}", file=fname)
    _check_types(manifest, types, fname)
    con = _con()
    checks = {manifest.time_column: (_ts_expr(manifest.time_column, types[manifest.time_column]),
                                     "a timestamp such as 2026-11-18T14:00:00Z")}
    for m in manifest.measures:
        checks[m] = (_num_expr(m, types[m]), "a number")
    conds = {c: f"({expr} IS NULL AND {_q(c)} IS NOT NULL"
                + (f" AND TRIM(CAST({_q(c)} AS VARCHAR)) <> ''" if c != manifest.time_column
                   else "") + ")"
             for c, (expr, _) in checks.items()}
    counts = ", ".join(f"count(*) FILTER (WHERE {cond})" for cond in conds.values())
    null_ts = f"count(*) FILTER (WHERE {_q(manifest.time_column)} IS NULL)"
    # the counts of the later checks ride on the same scan (one pass instead of 2 + measures)
    later, later_params = _later_counts(types, manifest)
    try:
        res = con.execute(f"SELECT count(*), {null_ts}, {counts}, {later} FROM {src}",
                          later_params).fetchone()
    except duckdb.Error as exc:
        _raise_duckdb(exc, fname, "CSV" if path.suffix == ".csv" else "Parquet")
    n_later = 1 + 3 * len(manifest.measures)
    res, pre = res[:len(res) - n_later], res[len(res) - n_later:]
    nrows, n_null_ts, bad = res[0], res[1], res[2:]
    if nrows == 0:
        raise PassportError("has a header but no rows; expected at least one fact row",
                            file=fname)
    if n_null_ts:
        row, _ = _first_bad(con, src, f"{_q(manifest.time_column)} IS NULL",
                            manifest.time_column, [])
        raise PassportError("is empty; expected a timestamp", file=_row_file(fname, path, row),
                            row=row, column=manifest.time_column)
    for (c, (_, expected)), n in zip(checks.items(), bad):
        if n:
            row, val = _first_bad(con, src, conds[c], c, [])
            more = f" ({n} bad values in all)" if n > 1 else ""
            raise PassportError(f"cannot parse {_show(val)}; expected {expected}{more}",
                                file=_row_file(fname, path, row), row=row, column=c)
    _check_time_bounds(con, src, types, manifest, fname, path, pre[0])
    _check_measure_values(con, src, types, manifest, fname, path, counts=pre[1:])
    for coarse, fine in manifest.hierarchies.items():
        r = con.execute(f"SELECT {_dim_expr(fine)} AS f, count(DISTINCT {_dim_expr(coarse)}) AS n, "
                    f"string_agg(DISTINCT {_dim_expr(coarse)}, ', ') FROM {src} "
                    f"GROUP BY 1 HAVING n > 1 LIMIT 1").fetchone()
        if r:
            raise PassportError(f"hierarchy {coarse} > {fine} is broken: {fine} '{r[0]}' "
                                f"falls under several {coarse} values ({r[2]}); each {fine} "
                                f"must belong to one {coarse}", file=fname, column=coarse)
    return int(nrows)


def time_bounds() -> tuple[pd.Timestamp, pd.Timestamp]:
    """The plausible range of time stamps, ``[low, high)`` in UTC.

    ``WORKBENCH_TIME_MIN`` (default 1970-01-01) and ``WORKBENCH_TIME_MAX``
    (default the end of the day after today, UTC) change it. A stamp outside is a located error: one
    ``9999-12-31`` among hourly rows would otherwise ask for millions of buckets.
    """
    def parse(var: str, default: pd.Timestamp) -> pd.Timestamp:
        raw = os.environ.get(var)
        if not raw:
            return default
        try:
            t = pd.Timestamp(raw)
        except (ValueError, TypeError, OverflowError):
            t = None
        if t is None or pd.isna(t):
            raise PassportError(f"{var}={raw!r}: expected a timestamp such as "
                                "2026-11-18T14:00:00Z")
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")

    lo = parse("WORKBENCH_TIME_MIN", pd.Timestamp("1970-01-01", tz="UTC"))
    hi = parse("WORKBENCH_TIME_MAX", (pd.Timestamp.now(tz="UTC") + pd.Timedelta("1D")).ceil("D"))
    return lo, hi


def _bounds_text(lo: pd.Timestamp, hi: pd.Timestamp) -> str:
    return (f"expected a time from {lo:%Y-%m-%dT%H:%M:%SZ} to before {hi:%Y-%m-%dT%H:%M:%SZ} "
            "(WORKBENCH_TIME_MIN / WORKBENCH_TIME_MAX change the range)")


def _first_bad(con, src: str, cond: str, col: str, params: list) -> tuple[int, str]:
    """Row number (1-based) and text of the first row of ``src`` where ``cond`` holds."""
    return con.execute(
        f"SELECT rn, v FROM (SELECT row_number() OVER () AS rn, {cond} AS bad, "
        f"CAST({_q(col)} AS VARCHAR) AS v FROM {src}) WHERE bad ORDER BY rn LIMIT 1",
        params).fetchone()


def _check_types(manifest: Manifest, types: dict[str, str], fname: str) -> None:
    """Parquet column types the normalized SELECT cannot turn into dimensions or measures."""
    nested = ("[]", "STRUCT", "MAP", "UNION")
    for d in manifest.all_dimensions + (manifest.time_column,):
        t = types[d].upper()
        if t.endswith("]") or t.startswith(nested[1:]):
            raise PassportError(f"has type {types[d]}; expected a plain value per row (text, "
                                "number or time), not a list or a record", file=fname, column=d)
    for m in manifest.measures:
        t = types[m].upper()
        if t == "BOOLEAN" or t.endswith("]") or t.startswith(nested[1:]) or t in (
                "DATE", "BLOB") or t.startswith(("TIMESTAMP", "TIME", "INTERVAL")):
            raise PassportError(f"has type {types[m]}; expected numbers (a measure is summed)",
                                file=fname, column=m)


def _later_counts(types: dict[str, str], manifest: Manifest) -> tuple[str, list]:
    """The counting aggregates of :func:`_check_time_bounds` and :func:`_check_measure_values`
    (rows out of the time bounds; per measure: values, non-finite, negative), and their
    parameters, for the first scan of a file to compute along with its own."""
    cond, params = _bounds_cond(types, manifest)
    aggs = [f"count(*) FILTER (WHERE {cond})"]
    for m in manifest.measures:
        x = _num_expr(m, types[m])
        aggs += [f"count({x})", f"count(*) FILTER (WHERE isinf({x}) OR isnan({x}))",
                 f"count(*) FILTER (WHERE {x} < 0)"]
    return ", ".join(aggs), params


def _bounds_cond(types: dict[str, str], manifest: Manifest) -> tuple[str, list]:
    lo, hi = time_bounds()
    tc = manifest.time_column
    cond = f"({_ts_expr(tc, types[tc])} < ? OR {_ts_expr(tc, types[tc])} >= ?)"
    return cond, [lo.to_pydatetime(), hi.to_pydatetime()]


def _check_time_bounds(con, src: str, types: dict[str, str], manifest: Manifest, fname: str,
                       path: Path, n_out: int | None = None) -> None:
    lo, hi = time_bounds()
    tc = manifest.time_column
    cond, params = _bounds_cond(types, manifest)
    n = n_out if n_out is not None else con.execute(
        f"SELECT count(*) FILTER (WHERE {cond}) FROM {src}", params).fetchone()[0]
    if n:
        row, val = _first_bad(con, src, cond, tc, params)
        more = f" ({n} such rows in all)" if n > 1 else ""
        raise PassportError(f"{val!r} is outside the plausible range; {_bounds_text(lo, hi)}"
                            f"{more}", file=_row_file(fname, path, row), row=row, column=tc)


def _check_measure_values(con, src: str, types: dict[str, str], manifest: Manifest,
                          fname: str, path: Path, counts: tuple | None = None) -> None:
    """What the detectors and the localization refuse, refused here with its place.

    Every measure holds some value, and only finite ones. A ratio's denominator is
    never negative (a slice's share of it must be a share); any other measure may
    hold a negative correction row (the quality audit reports it) but not a negative
    sum over a time bucket (the detectors model non-negative sums).
    """
    denominators = {mt.denominator for mt in manifest.metrics.values() if mt.kind == "ratio"}
    secs = int(manifest.grain_td.total_seconds())
    tc = manifest.time_column
    for i, m in enumerate(manifest.measures):
        x = _num_expr(m, types[m])
        n_val, n_inf, n_neg = counts[3 * i:3 * i + 3] if counts is not None else \
            con.execute(f"SELECT count({x}), count(*) FILTER (WHERE isinf({x}) OR isnan({x})), "
                        f"count(*) FILTER (WHERE {x} < 0) FROM {src}").fetchone()
        if not n_val:
            raise PassportError("holds no values in any row; expected numbers (an all-empty "
                                "measure has nothing to sum)", file=fname, column=m)
        checks = [(n_inf, f"(isinf({x}) OR isnan({x}))", "a finite number")]
        if m in denominators:
            checks.append((n_neg, f"({x} < 0)", "a number >= 0 (it is the denominator of a "
                                                "ratio metric)"))
        for n, cond, what in checks:
            if n:
                row, val = _first_bad(con, src, cond, m, [])
                more = f" ({n} such values in all)" if n > 1 else ""
                raise PassportError(f"got {val!r}; expected {what}{more}",
                                    file=_row_file(fname, path, row), row=row, column=m)
        if n_neg:
            bucket = f"time_bucket(to_seconds(?), {_ts_expr(tc, types[tc])})"
            r = con.execute(f"SELECT {bucket} AS b, sum({x}) AS s FROM {src} GROUP BY b "
                            "HAVING s < 0 ORDER BY b LIMIT 1", [secs]).fetchone()
            if r:
                t = pd.Timestamp(r[0]).tz_convert("UTC")
                raise PassportError(f"sums to {r[1]:g} over the {manifest.grain} bucket from "
                                    f"{t:%Y-%m-%dT%H:%M:%SZ}; expected a sum >= 0 per bucket "
                                    "(negative rows are corrections of others)", file=fname,
                                    column=m)


def _row_file(fname: str, path: Path, row: int) -> str:
    return f"{fname} (line {row + 1})" if path.suffix == ".csv" else fname


# --------------------------------------------------------------------------- changes
def _read_small_table(path: Path, fname: str) -> tuple[pd.DataFrame, list[int]]:
    """A small table as strings/objects, with each row's line number (CSV/JSONL)."""
    if path.stat().st_size == 0:
        raise PassportError("the file is empty (0 bytes)", file=fname)
    if path.suffix == ".jsonl":
        records, lines = [], []
        with open(path, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PassportError(f"is not valid JSON ({exc.msg}); expected one JSON "
                                        "object per line (truncated file?)",
                                        file=f"{fname}, line {i}") from None
                except RecursionError:
                    raise PassportError(_TOO_DEEP, file=f"{fname}, line {i}") from None
                if not isinstance(rec, dict):
                    raise PassportError("expected a JSON object", file=f"{fname}, line {i}")
                records.append(rec)
                lines.append(i)
        return pd.DataFrame.from_records(records), lines
    if path.suffix == ".csv":
        _csv_header(path, fname)
        con = _con()
        src, cols, _ = _source_sql(path, fname)
        try:
            df = con.execute(f"SELECT * FROM {src}").df()
        except duckdb.Error as exc:
            _raise_duckdb(exc, fname, "CSV")
        return df, list(range(2, len(df) + 2))
    try:
        df = _con().execute(f"SELECT * FROM read_parquet({_lit(str(path))})").df()
    except duckdb.Error as exc:
        _raise_duckdb(exc, fname, "Parquet")
    return df, list(range(1, len(df) + 1))


def _show(value, limit: int = 80) -> str:
    """A value as a user wrote it, for a message: numpy scalars as plain Python
    (``inf``, not ``np.float64(inf)``), long values cut short."""
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


_TOO_DEEP = ("nests JSON values too deeply to read; expected a flat object (a change's scope "
             "maps dimensions to values)")


def _where(fname: str, path: Path, lines: list[int], i: int) -> str:
    if path.suffix in (".csv", ".jsonl"):
        return f"{fname} (line {lines[i]})"
    return fname


def _parse_ts_column(values: pd.Series, fname: str, path: Path, lines: list[int],
                     column: str) -> pd.Series:
    try:
        ts = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    except (ValueError, TypeError, OverflowError):  # mixed types pandas will not coerce
        ts = pd.Series([_one_ts(v) for v in values.tolist()], index=values.index,
                       dtype="datetime64[ns, UTC]")
    bad = ts.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PassportError(f"cannot parse {_show(values.iloc[i])}; expected a timestamp such as "
                            "2026-11-18T14:00:00Z", file=_where(fname, path, lines, i),
                            row=i + 1, column=column)
    lo, hi = time_bounds()
    out = ((ts < lo) | (ts >= hi)).to_numpy()
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise PassportError(f"{_show(values.iloc[i])} is outside the plausible range; "
                            f"{_bounds_text(lo, hi)}", file=_where(fname, path, lines, i),
                            row=i + 1, column=column)
    return ts


def _one_ts(v) -> pd.Timestamp:
    """One value as a UTC time stamp, NaT when it is not one."""
    try:
        t = pd.to_datetime(v, utc=True)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return t if isinstance(t, pd.Timestamp) else pd.NaT


def _parse_scope(value, where: str, row: int, valid_dims: tuple[str, ...]) -> dict:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise PassportError(_TOO_DEEP, file=where, row=row, column="scope") from None
        except json.JSONDecodeError as exc:
            raise PassportError(f"is not valid JSON ({exc.msg}); expected an object such as "
                                '{"platform": "ios"} or {} for everywhere',
                                file=where, row=row, column="scope") from None
    if not isinstance(value, dict):
        raise PassportError(f"expected a JSON object of dimension -> value, got {_show(value)}",
                            file=where, row=row, column="scope")
    out = {}
    for k, v in value.items():
        if k not in valid_dims:
            raise PassportError(f"names '{k}', which is not a dimension; dimensions are: "
                                + ", ".join(valid_dims), file=where, row=row, column="scope")
        if isinstance(v, (list, tuple)):
            if not v or not all(isinstance(x, (str, int, float)) for x in v):
                raise PassportError(f"'{k}' must be a value or a non-empty list of values, "
                                    f"got {_show(v)}", file=where, row=row, column="scope")
            out[k] = [str(x) for x in v]
        elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
            out[k] = str(v)
        else:
            raise PassportError(f"'{k}' must be a value or a list of values, got {_show(v)}",
                                file=where, row=row, column="scope")
    return out


def _load_changes(path: Path | None, directory: Path, manifest: Manifest) -> tuple[pd.DataFrame, int]:
    cols = ["id", "ts", "kind", "target", "description", "scope", "rollout", "author"]
    if path is None:
        raise PassportError("no change log: expected changes.parquet, changes.csv or "
                            "changes.jsonl (it may have no rows)", file=str(directory))
    fname = _rel(directory, path)
    if path.suffix == ".jsonl" and not path.read_text(errors="replace").strip():
        return pd.DataFrame(columns=cols), 0
    df, lines = _read_small_table(path, fname)
    if len(df) == 0:
        missing = [c for c in CHANGE_REQUIRED if c not in df.columns]
        if path.suffix != ".jsonl" and missing:
            raise PassportError(f"has no column(s) {', '.join(missing)}; a change log needs "
                                + ", ".join(CHANGE_REQUIRED), file=fname)
        return pd.DataFrame(columns=cols), 0
    missing = [c for c in CHANGE_REQUIRED if c not in df.columns]
    if missing:
        raise PassportError(f"has no column '{missing[0]}'; a change log needs "
                            f"{', '.join(CHANGE_REQUIRED)}; columns are: "
                            f"{', '.join(map(str, df.columns))}", file=fname)
    for c in ("id", "kind", "target"):
        s = df[c]
        bad = s.isna() | (s.astype(str).str.strip() == "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PassportError("is empty; expected a value", file=_where(fname, path, lines, i),
                                row=i + 1, column=c)
    ids = df["id"].astype(str)
    dup = ids.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise PassportError(f"id '{ids.iloc[i]}' is repeated; ids must be unique",
                            file=_where(fname, path, lines, i), row=i + 1, column="id")
    kinds = df["kind"].astype(str).str.strip().str.lower()
    badk = ~kinds.isin(CHANGE_KINDS)
    if badk.any():
        i = int(np.flatnonzero(badk.to_numpy())[0])
        raise PassportError(f"'{df['kind'].iloc[i]}' is not a change kind; expected one of "
                            + ", ".join(CHANGE_KINDS), file=_where(fname, path, lines, i),
                            row=i + 1, column="kind")
    ts = _parse_ts_column(df["ts"], fname, path, lines, "ts")
    valid_dims = manifest.all_dimensions
    scopes = [_parse_scope(v, _where(fname, path, lines, i), i + 1, valid_dims)
              for i, v in enumerate(df["scope"].tolist())]
    if "rollout" in df.columns:
        raw = df["rollout"]
        rollout = pd.to_numeric(raw, errors="coerce")
        bad = (raw.notna() & (raw.astype(str).str.strip() != "") & rollout.isna()) | \
              (rollout.notna() & ((rollout < 0) | (rollout > 100)))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PassportError(f"got {_show(raw.iloc[i])}; expected a number from 0 to 100 "
                                "(percent of the scope exposed) or empty",
                                file=_where(fname, path, lines, i), row=i + 1, column="rollout")
    else:
        rollout = pd.Series(np.nan, index=df.index)
    author = df["author"].astype("object").where(df["author"].notna(), None) \
        if "author" in df.columns else pd.Series([None] * len(df), dtype="object")
    out = pd.DataFrame({
        "id": ids.to_numpy(), "ts": ts.to_numpy(), "kind": kinds.to_numpy(),
        "target": df["target"].astype(str).to_numpy(),
        "description": df["description"].fillna("").astype(str).to_numpy(),
        "scope": scopes, "rollout": rollout.astype(float).to_numpy(),
        "author": author.to_numpy(),
    })
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out.sort_values(["ts", "id"], kind="stable").reset_index(drop=True), len(out)


def _load_experiments(path: Path, directory: Path) -> pd.DataFrame:
    fname = _rel(directory, path)
    df, lines = _read_small_table(path, fname)
    missing = [c for c in EXPERIMENT_REQUIRED if c not in df.columns]
    if missing:
        raise PassportError(f"has no column '{missing[0]}'; experiment assignments need "
                            f"{', '.join(EXPERIMENT_REQUIRED)} (and optionally ts); columns "
                            f"are: {', '.join(map(str, df.columns))}", file=fname)
    if "ts" in df.columns:
        df["ts"] = _parse_ts_column(df["ts"], fname, path, lines, "ts")
    for c in EXPERIMENT_REQUIRED:
        df[c] = df[c].astype(str)
    return df


def _validate_jsonl(path: Path, directory: Path) -> int:
    df, _ = _read_small_table(path, _rel(directory, path))
    return len(df)


# --------------------------------------------------------------------------- entry point
def load_passport(directory: str | Path, *, data_roots: tuple[str | Path, ...] = (),
                  trusted: dict | None = None) -> Passport:
    """Load and validate a passport directory.

    Parameters
    ----------
    directory:
        A folder with ``passport.yaml``, ``events.*``, ``changes.*`` and the
        optional tables of the spec.
    data_roots:
        Folders besides the passport's own (and those of ``WORKBENCH_DATA_ROOTS``)
        its files may resolve into; anything else outside it is refused.
    trusted:
        What a store recorded of event files it validated and hashed
        (:func:`workbench.store.verified_files`): resolved path -> ``bytes``,
        ``mtime_ns``, ``sha256``, ``rows``, ``fingerprint``. An event file whose
        size and modification time (nanoseconds) are those recorded, under the
        same :func:`validation_fingerprint`, is not scanned nor hashed again;
        any difference and it is validated in full. ``workbench validate``
        never passes it.

    Returns
    -------
    Passport
        Validated; event files are referenced, not read into memory.

    Raises
    ------
    PassportError
        One located message for the first problem found.

    Examples
    --------
    >>> p = load_passport("sample_data/demo")       # doctest: +SKIP
    >>> p.manifest.metric("conversion_rate").numerator
    'conversions'
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PassportError("is not a directory; expected a passport folder with passport.yaml",
                            file=str(directory))
    manifest = parse_manifest(directory)
    loaded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    prov: list[FileProvenance] = []

    def record(table: str, path: Path, rows: int, transform: tuple[str, ...] = (),
               digest: str | None = None, size: int | None = None):
        src = manifest.sources.get(table, {})
        t = src.get("transform") or ()
        if isinstance(t, str):
            t = (t,)
        prov.append(FileProvenance(
            table=table, path=_rel(directory, path), format=path.suffix.lstrip("."),
            sha256=digest or sha256_file(path), rows=rows,
            bytes=path.stat().st_size if size is None else size,
            origin=(str(src["origin"]) if src.get("origin") is not None else None),
            extracted_at=(str(src["extracted_at"]) if src.get("extracted_at") is not None
                          else None),
            transform=tuple(str(x) for x in t) + transform, loaded_at=loaded_at))

    roots = tuple(Path(r) for r in data_roots)
    events = _find_table_files(directory, manifest, "events", roots)
    if not events:
        raise PassportError("no facts: expected events.parquet or events.csv",
                            file=str(directory))
    fingerprint = validation_fingerprint(manifest)
    checks: dict[str, dict] = {}
    for p in events:
        stat = p.stat()  # before reading: a change while validating shows next time
        rec = trusted_check(p, stat, fingerprint, trusted)
        if rec is None:
            rows, digest = _validate_events_file(p, directory, manifest), sha256_file(p)
        else:
            rows, digest = int(rec["rows"]), str(rec["sha256"])
        checks[str(p.resolve())] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                    "sha256": digest, "rows": rows,
                                    "fingerprint": fingerprint, "trusted": rec is not None}
        record("events", p, rows, ("dimension values as strings, empty -> '(null)'",),
               digest=digest, size=stat.st_size)

    ch_files = _find_table_files(directory, manifest, "changes", roots)
    changes, n = _load_changes(ch_files[0] if ch_files else None, directory, manifest)
    record("changes", ch_files[0], n)

    experiments = None
    ex_files = _find_table_files(directory, manifest, "experiments", roots)
    if ex_files:
        experiments = _load_experiments(ex_files[0], directory)
        record("experiments", ex_files[0], len(experiments))
    extra: dict[str, Path] = {}
    for table in ("logs", "traces"):
        files = _find_table_files(directory, manifest, table, roots)
        if files:
            record(table, files[0], _validate_jsonl(files[0], directory))
            extra[table] = files[0]
    graph = None
    gpath = directory / "graph.yaml"
    if gpath.is_file():
        _contained(directory, gpath, "graph.yaml", roots)
        try:
            graph = yaml.safe_load(gpath.read_text()) or {}
        except yaml.YAMLError as exc:
            raise PassportError(f"is not valid YAML: {exc}", file="graph.yaml") from None
        record("graph", gpath, len(graph) if isinstance(graph, dict) else 0)
        extra["graph"] = gpath
    for table in manifest.sources:
        if table in ("events", "changes"):
            continue
        if table in _TABLE_EXTS and not _find_table_files(directory, manifest, table, roots):
            raise PassportError(f"key 'sources.{table}' describes a '{table}' table but "
                                f"{directory} has no {' or '.join(table + e for e in _TABLE_EXTS[table])}",
                                file=MANIFEST)
    return Passport(directory=directory.resolve(), manifest=manifest,
                    event_files=tuple(p.resolve() for p in events), changes=changes,
                    experiments=experiments, provenance=tuple(prov), graph=graph,
                    extra_files=extra, file_checks=checks)
