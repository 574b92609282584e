"""The DuckDB file store: passports ingested once, queried many times.

Layout of a store file (one schema per passport, named after it):

- ``wb_meta.passports``: name, schema, manifest (JSON), first and last ingest.
- ``wb_meta.batches``: every event file ingested: content hash (SHA-256), rows,
  time range, source path. A batch whose hash is already stored is a
  duplicate and is skipped, so re-ingesting never double-counts; a file at a
  known path whose content changed replaces its earlier batch.
- ``wb_meta.provenance``: origin, hash, rows, transforms of every file loaded.
- ``<schema>.dict_<dim>``: the dictionary of each dimension (code -> value).
- ``<schema>.events``: ``ts``, ``batch``, one INTEGER code per dimension,
  one DOUBLE per measure. Dimensions stay dictionary-encoded; the view
  ``<schema>.events_v`` decodes them for people reading SQL.
- ``<schema>.agg_<grain>s``: sums of every measure and the row count per batch
  and grain bucket, appended with each batch (the total series reads them).
- ``<schema>.qc_presence_<grain>s``, ``qc_keys_<grain>s``, ``qc_counts_<grain>s``: the
  quality audit's counts per batch, taken in the same transaction (:mod:`.qcounts`).
- ``wb_meta.verified_files``: size, mtime, hash and rows of each event file the last
  load validated, so an unchanged file is not validated again (``passport/trust.py``).
- ``<schema>.changes``, ``<schema>.experiments``.

An ingest is one transaction: validation happens before it starts, and any
failure rolls back, so an existing store is never left half-changed. Readers
(dashboards, ``investigate``) open the file read-only.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import StoreError
from ..options import duckdb_settings
from ..passport import Manifest, Passport, parse_grain, sha256_file
from . import qcounts
from .sql import META, bound_connection, lit, q


def schema_name(passport_name: str) -> str:
    return "p_" + re.sub(r"[^A-Za-z0-9_]", "_", passport_name).lower()


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to one event file during an ingest."""

    file: str
    sha256: str
    rows: int
    status: str  # "loaded" | "duplicate" | "replaced"
    batch: int | None
    detail: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class IngestReport:
    """Result of :meth:`Store.ingest`."""

    passport: str
    db: str
    batches: tuple[BatchOutcome, ...]
    changes: int
    experiments: int
    total_rows: int
    seconds: float = 0.0

    @property
    def loaded_rows(self) -> int:
        return sum(b.rows for b in self.batches if b.status in ("loaded", "replaced"))

    def to_dict(self) -> dict:
        return {"passport": self.passport, "db": self.db,
                "batches": [b.to_dict() for b in self.batches], "changes": self.changes,
                "experiments": self.experiments, "total_rows": self.total_rows,
                "loaded_rows": self.loaded_rows, "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        lines = [f"passport {self.passport} -> {self.db}"]
        for b in self.batches:
            lines.append(f"  {b.status:9s} {b.file}: {b.rows} rows"
                         + (f" ({b.detail})" if b.detail else ""))
        lines.append(f"  changes: {self.changes}, experiments: {self.experiments}, "
                     f"events stored: {self.total_rows} rows ({self.seconds:.2f} s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class StoredPassport:
    """A passport as the store knows it (manifest and where its tables are)."""

    name: str
    schema: str
    manifest: Manifest
    directory: str | None = None
    provenance: tuple[dict, ...] = field(default_factory=tuple)


class Store:
    """A DuckDB file holding ingested passports.

    Parameters
    ----------
    path:
        The database file; created on first write.
    read_only:
        Open without write access (dashboards, readers). Fails if the file
        does not exist.

    Examples
    --------
    >>> from workbench.passport import load_passport
    >>> with Store("shop.duckdb") as st:                # doctest: +SKIP
    ...     print(st.ingest(load_passport("sample_data/demo")).summary())
    """

    def __init__(self, path: str | Path, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.is_file():
            raise StoreError(f"{self.path}: no such store; run `workbench ingest PASSPORT "
                             f"--db {self.path}` first")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store: "
                             f"{str(exc).splitlines()[0]}") from None
        # UTC, no DuckDB progress bar over our own progress lines, bounded memory; a served
        # session's reader is also locked down (store/lockdown.py), after which nothing may
        # change its settings (a second reader of a locked instance is left as it is)
        from .lockdown import CONFIGURING, _locked, configure
        with CONFIGURING:
            if not _locked(self.con):
                bound_connection(self.con)  # memory limit and spill folder (environment)
                for name, value in duckdb_settings():  # set_options(memory_limit=, threads=)
                    self.con.execute(f"SET {name} = ?", [value])
            configure(self.con, read_only=read_only)
        if not read_only:
            self._init_meta()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def _init_meta(self) -> None:
        c = self.con
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {META}")
        c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.passports (
            name VARCHAR PRIMARY KEY, schema VARCHAR, manifest JSON, directory VARCHAR,
            first_ingest TIMESTAMPTZ, last_ingest TIMESTAMPTZ)""")
        c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.batches (
            passport VARCHAR, batch INTEGER, file VARCHAR, sha256 VARCHAR, rows BIGINT,
            min_ts TIMESTAMPTZ, max_ts TIMESTAMPTZ, loaded_at TIMESTAMPTZ, active BOOLEAN)""")
        c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.provenance (
            passport VARCHAR, "table" VARCHAR, path VARCHAR, format VARCHAR, sha256 VARCHAR,
            rows BIGINT, bytes BIGINT, origin VARCHAR, extracted_at VARCHAR,
            transform JSON, loaded_at VARCHAR)""")
        c.execute(f"""CREATE TABLE IF NOT EXISTS {META}.verified_files (
            passport VARCHAR, path VARCHAR, bytes BIGINT, mtime_ns BIGINT, sha256 VARCHAR,
            rows BIGINT, fingerprint VARCHAR, verified_at TIMESTAMPTZ)""")

    # ------------------------------------------------------------------ reading
    def passports(self) -> list[str]:
        if not self._has_meta():
            return []
        return [r[0] for r in self.con.execute(
            f"SELECT name FROM {META}.passports ORDER BY name").fetchall()]

    def _has_meta(self) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name = 'passports'", [META]).fetchone()[0])

    def passport(self, name: str | None = None) -> StoredPassport:
        """The stored passport called ``name`` (the only one if ``name`` is None)."""
        names = self.passports()
        if name is None:
            if len(names) != 1:
                raise StoreError(f"{self.path} holds {len(names)} passports "
                                 f"({', '.join(names) or 'none'}); name one")
            name = names[0]
        if name not in names:
            raise StoreError(f"{self.path} has no passport '{name}'; it holds: "
                             + (", ".join(names) or "none"))
        schema, manifest, directory = self.con.execute(
            f"SELECT schema, manifest, directory FROM {META}.passports WHERE name = ?",
            [name]).fetchone()
        prov = self.con.execute(
            f"SELECT * FROM {META}.provenance WHERE passport = ? ORDER BY loaded_at, path",
            [name]).df()
        return StoredPassport(name=name, schema=schema,
                              manifest=manifest_from_dict(json.loads(manifest)),
                              directory=directory,
                              provenance=tuple(prov.to_dict("records")))

    def changes(self, name: str) -> pd.DataFrame:
        sp = self.passport(name)
        df = self.con.execute(f"SELECT * FROM {sp.schema}.changes ORDER BY ts, id").df()
        df["scope"] = [json.loads(s) if s else {} for s in df["scope"]]
        return df

    def batches(self, name: str) -> pd.DataFrame:
        return self.con.execute(f"SELECT * FROM {META}.batches WHERE passport = ? "
                                f"ORDER BY batch", [name]).df()

    def event_count(self, name: str) -> int:
        sp = self.passport(name)
        return int(self.con.execute(f"SELECT count(*) FROM {sp.schema}.events").fetchone()[0])

    # ------------------------------------------------------------------ writing
    def ingest(self, passport: Passport, *, batch_files: list[Path] | None = None,
               progress=None) -> IngestReport:
        """Load a validated passport, or append batches of events to it.

        Each event file is a batch identified by its content hash: a batch seen
        before (same hash) is reported as ``duplicate`` and not loaded again; a
        file at a path ingested before whose content changed replaces the older
        batch. The change log and experiments are replaced by the passport's.
        The whole ingest is one transaction.

        Parameters
        ----------
        passport:
            From :func:`workbench.passport.load_passport` (already validated).
        batch_files:
            Extra event files to append (validated here against the manifest).
        """
        import time

        if self.read_only:
            raise StoreError(f"{self.path} is open read-only")
        t0 = time.perf_counter()
        m = passport.manifest
        files = list(passport.event_files)
        extra_prov = []
        if batch_files:
            from ..passport.load import _validate_events_file
            for f in batch_files:
                f = Path(f).resolve()
                if not f.is_file():
                    raise StoreError(f"{f}: no such batch file")
                rows = _validate_events_file(f, f.parent, m)
                extra_prov.append((f, rows))
                files.append(f)
        schema = schema_name(m.name)
        c = self.con
        self._check_compatible(m)
        from ..engines import current_engine
        engine = current_engine()  # None: DuckDB scans the files itself (the default)
        outcomes: list[BatchOutcome] = []
        c.execute("BEGIN TRANSACTION")
        try:
            self._create_passport_tables(m, schema)
            now = datetime.now(timezone.utc)
            checked = passport.file_checks  # hashed when the passport loaded
            for f in files:
                digest = checked.get(str(f), {}).get("sha256") or sha256_file(f)
                prev = c.execute(f"SELECT batch, file FROM {META}.batches WHERE passport = ? "
                                 f"AND sha256 = ? AND active", [m.name, digest]).fetchone()
                if prev:
                    outcomes.append(BatchOutcome(str(f), digest, 0, "duplicate", prev[0],
                                                 f"same content as batch {prev[0]} "
                                                 f"({Path(prev[1]).name}); not loaded again"))
                    continue
                same_path = c.execute(f"SELECT batch FROM {META}.batches WHERE passport = ? "
                                      f"AND file = ? AND active", [m.name, str(f)]).fetchall()
                status, detail = "loaded", ""
                for (b,) in same_path:
                    c.execute(f"DELETE FROM {schema}.events WHERE batch = ?", [b])
                    c.execute(f"DELETE FROM {schema}.{q(agg_table(m))} WHERE batch = ?", [b])
                    qcounts.delete_batches(c, m, schema, "batch = ?", [b])
                    c.execute(f"UPDATE {META}.batches SET active = false WHERE passport = ? "
                              f"AND batch = ?", [m.name, b])
                    status, detail = "replaced", f"file changed since batch {b}; replaced it"
                batch = c.execute(f"SELECT coalesce(max(batch), 0) + 1 FROM {META}.batches "
                                  f"WHERE passport = ?", [m.name]).fetchone()[0]
                if progress:
                    progress(f"loading {f.name} as batch {batch}"
                             + (f" (scanned by {engine.name})" if engine is not None else ""))
                if engine is None:
                    rows, tmin, tmax = self._load_batch(
                        passport.events_sql((f,)), m, schema, batch,
                        stage=f.suffix.lower() != ".parquet")
                else:
                    rows, tmin, tmax = self._load_staged(engine, passport, f, schema, batch)
                c.execute(f"INSERT INTO {META}.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, true)",
                          [m.name, batch, str(f), digest, rows, tmin, tmax, now])
                self._aggregate_batches(m, schema, f"batch = {int(batch)}")
                qcounts.count_batches(c, m, schema, f"batch = {int(batch)}")
                outcomes.append(BatchOutcome(str(f), digest, rows, status, batch, detail))
            self._backfill_aggregates(m, schema)
            self._replace_changes(passport, schema)
            n_exp = self._replace_experiments(passport, schema)
            self._record_provenance(passport, extra_prov, outcomes)
            self._record_verified(m.name, checked, now)
            c.execute(f"""INSERT INTO {META}.passports VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET manifest = excluded.manifest,
                directory = excluded.directory, last_ingest = excluded.last_ingest""",
                      [m.name, schema, json.dumps(m.to_dict(), default=str), str(passport.directory),
                       now, now])
            total = c.execute(f"SELECT count(*) FROM {schema}.events").fetchone()[0]
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return IngestReport(passport=m.name, db=str(self.path), batches=tuple(outcomes),
                            changes=len(passport.changes), experiments=n_exp,
                            total_rows=int(total), seconds=time.perf_counter() - t0)

    def _record_verified(self, name: str, checks: dict[str, dict], now) -> None:
        """What the passport's load verified of each event file (``passport/trust.py``)."""
        for path, r in checks.items():
            self.con.execute(f"DELETE FROM {META}.verified_files WHERE passport = ? AND path = ?",
                             [name, path])
            self.con.execute(f"INSERT INTO {META}.verified_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [name, path, r["bytes"], r["mtime_ns"], r["sha256"], r["rows"],
                              r["fingerprint"], now])

    def _check_compatible(self, m: Manifest) -> None:
        if m.name not in self.passports():
            return
        old = self.passport(m.name).manifest
        if (old.all_dimensions, tuple(old.measures), old.time_column) != \
                (m.all_dimensions, tuple(m.measures), m.time_column):
            raise StoreError(
                f"{self.path} already holds a passport '{m.name}' with other columns "
                f"(dimensions {', '.join(old.all_dimensions)}; measures "
                f"{', '.join(old.measures)}); rename the passport or use another --db")

    def _create_passport_tables(self, m: Manifest, schema: str) -> None:
        c = self.con
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for d in m.all_dimensions:
            c.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{q('dict_' + d)} "
                      f"(code INTEGER PRIMARY KEY, value VARCHAR UNIQUE)")
        cols = ", ".join([f"{q(d)} INTEGER" for d in m.all_dimensions]
                         + [f"{q(x)} DOUBLE" for x in m.measures])
        c.execute(f"CREATE TABLE IF NOT EXISTS {schema}.events "
                  f"(ts TIMESTAMPTZ, batch INTEGER, {cols})")
        dec = ", ".join(f"(SELECT value FROM {schema}.{q('dict_' + d)} WHERE code = e.{q(d)}) "
                        f"AS {q(d)}" for d in m.all_dimensions)
        meas = ", ".join(f"e.{q(x)}" for x in m.measures)
        c.execute(f"CREATE OR REPLACE VIEW {schema}.events_v AS SELECT e.ts, e.batch, {dec}, "
                  f"{meas} FROM {schema}.events e")
        c.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{q(agg_table(m))} (batch INTEGER, "
                  f"b TIMESTAMPTZ, rows BIGINT, "
                  + ", ".join(f"{q(x)} DOUBLE" for x in m.measures) + ")")
        qcounts.create_tables(c, m, schema)
        c.execute(f"""CREATE TABLE IF NOT EXISTS {schema}.changes (id VARCHAR PRIMARY KEY,
            ts TIMESTAMPTZ, kind VARCHAR, target VARCHAR, description VARCHAR, scope JSON,
            rollout DOUBLE, author VARCHAR)""")

    def _aggregate_batches(self, m: Manifest, schema: str, where: str) -> None:
        """Sums per batch and grain bucket of the facts in ``where`` (kept at ingest).

        The total series of a metric is read from them (``queries.metric_series``);
        a replaced batch's rows are deleted with it, so they stay exact.
        """
        secs = int(m.grain_td.total_seconds())
        sums = ", ".join(f"SUM({q(x)})" for x in m.measures)
        self.con.execute(
            f"INSERT INTO {schema}.{q(agg_table(m))} SELECT batch, time_bucket(INTERVAL "
            f"'{secs} seconds', ts) AS b, COUNT(*), {sums} FROM {schema}.events "
            f"WHERE {where} GROUP BY ALL")

    def _backfill_aggregates(self, m: Manifest, schema: str) -> None:
        """Aggregate the batches stored before the aggregates existed (or at another grain)."""
        agg = f"{schema}.{q(agg_table(m))}"
        # rows of batches replaced while the passport had another grain
        self.con.execute(f"DELETE FROM {agg} WHERE batch NOT IN (SELECT batch FROM "
                         f"{META}.batches WHERE passport = ? AND active)", [m.name])
        self._aggregate_batches(m, schema, f"batch IN (SELECT batch FROM {META}.batches WHERE "
                                           f"passport = {lit(m.name)} AND active EXCEPT "
                                           f"SELECT DISTINCT batch FROM {agg})")
        # the quality counts likewise (stream batches, stores written before they existed)
        c = self.con
        counts = f"{schema}.{q(qcounts.counts_table(int(m.grain_td.total_seconds())))}"
        qcounts.delete_batches(c, m, schema, f"batch NOT IN (SELECT batch FROM {META}.batches "
                               f"WHERE passport = ? AND active)", [m.name])
        missing = [int(r[0]) for r in c.execute(
            f"SELECT batch FROM {META}.batches WHERE passport = ? AND active AND rows > 0 "
            f"EXCEPT SELECT DISTINCT batch FROM {counts}", [m.name]).fetchall()]
        if missing:
            qcounts.count_batches(c, m, schema, f"batch IN ({', '.join(map(str, missing))})")

    def _load_batch(self, select_sql: str, m: Manifest, schema: str, batch: int, *,
                    stage: bool = True):
        """Code and append the rows of ``select_sql`` as ``batch``.

        ``stage``: materialize them first (a CSV is parsed once instead of once per
        dimension and once more to append). A Parquet file or a table is read where it is:
        each dimension's new values from its own column, then one coding pass, which at 10M
        rows takes about two thirds of the staged time and no copy of the rows in memory.
        """
        c = self.con
        src = "_stage" if stage else f"({select_sql})"
        if stage:
            c.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {select_sql}")
        for d in m.all_dimensions:
            dt = f"{schema}.{q('dict_' + d)}"
            c.execute(f"""INSERT INTO {dt}
                SELECT (SELECT coalesce(max(code), -1) FROM {dt}) + row_number() OVER (ORDER BY v),
                       v
                FROM (SELECT DISTINCT {q(d)} AS v FROM {src}
                      WHERE {q(d)} NOT IN (SELECT value FROM {dt}))""")
        joins = " ".join(f"JOIN {schema}.{q('dict_' + d)} {q('k_' + d)} "
                         f"ON {q('k_' + d)}.value = s.{q(d)}" for d in m.all_dimensions)
        codes = ", ".join(f"{q('k_' + d)}.code" for d in m.all_dimensions)
        meas = ", ".join(f"s.{q(x)}" for x in m.measures)
        c.execute(f"INSERT INTO {schema}.events SELECT s.ts, {batch}, {codes}, {meas} "
                  f"FROM {src} s {joins}")
        rows, tmin, tmax = c.execute(f"SELECT count(*), min(ts), max(ts) FROM {schema}.events "
                                     f"WHERE batch = ?", [batch]).fetchone()
        if stage:
            c.execute("DROP TABLE _stage")
        return int(rows), tmin, tmax

    def _load_staged(self, engine, passport: Passport, f: Path, schema: str, batch: int):
        """Append a batch an engine scanned and coded (``workbench.engines``)."""
        c, m = self.con, passport.manifest
        dicts = {d: c.execute(f"SELECT code, value FROM {schema}.{q('dict_' + d)}").df()
                 for d in m.all_dimensions}
        staged = engine.stage_batch(passport, (f,), dicts)
        try:
            for d, new in staged.new_codes.items():
                if len(new):
                    c.register("_wb_codes", new)
                    c.execute(f"INSERT INTO {schema}.{q('dict_' + d)} SELECT code::INTEGER, "
                              f"value FROM _wb_codes")
                    c.unregister("_wb_codes")
            cols = ", ".join([q(d) for d in m.all_dimensions] + [q(x) for x in m.measures])
            c.execute(f"INSERT INTO {schema}.events SELECT ts, ?::INTEGER, {cols} "
                      f"FROM read_parquet(?)", [batch, staged.parquet])
        finally:
            staged.cleanup()
        return staged.rows, staged.min_ts, staged.max_ts

    def _replace_changes(self, passport: Passport, schema: str) -> None:
        c = self.con
        ch = passport.changes.copy()
        c.execute(f"DELETE FROM {schema}.changes")
        if len(ch):
            ch["scope"] = [json.dumps(s, sort_keys=True) for s in ch["scope"]]
            ch["author"] = ch["author"].astype("object")
            c.register("_changes_df", ch)
            c.execute(f"INSERT INTO {schema}.changes SELECT id, ts, kind, target, description, "
                      f"scope::JSON, rollout, author FROM _changes_df")
            c.unregister("_changes_df")

    def _replace_experiments(self, passport: Passport, schema: str) -> int:
        c = self.con
        if passport.experiments is None:
            return 0
        c.register("_exp_df", passport.experiments)
        c.execute(f"CREATE OR REPLACE TABLE {schema}.experiments AS SELECT * FROM _exp_df")
        c.unregister("_exp_df")
        return len(passport.experiments)

    def _record_provenance(self, passport: Passport, extra, outcomes) -> None:
        c = self.con
        name = passport.manifest.name
        rows = [p.to_dict() for p in passport.provenance]
        from ..passport.load import FileProvenance
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for f, n in extra:
            rows.append(FileProvenance(table="events", path=str(f), format=f.suffix[1:],
                                       sha256=sha256_file(f), rows=n, bytes=f.stat().st_size,
                                       origin="appended batch", transform=("appended",),
                                       loaded_at=now).to_dict())
        dup = {o.sha256 for o in outcomes if o.status == "duplicate"}
        for r in rows:
            if r["sha256"] in dup:
                continue
            c.execute(f"DELETE FROM {META}.provenance WHERE passport = ? AND path = ? "
                      f"AND \"table\" = ?", [name, r["path"], r["table"]])
            c.execute(f"INSERT INTO {META}.provenance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [name, r["table"], r["path"], r["format"], r["sha256"], r["rows"],
                       r["bytes"], r["origin"], r["extracted_at"], json.dumps(r["transform"]),
                       r["loaded_at"]])


def verified_files(db: str | Path | None) -> dict[str, dict]:
    """What the store at ``db`` recorded of the event files it verified, by resolved path.

    For :func:`workbench.passport.load_passport` ``trusted=``: ``{}`` when there is no
    store there yet, or it cannot be opened now (another process writing it): the
    passport is then validated in full, never refused.
    """
    if db is None or not Path(db).is_file():
        return {}
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return {}
    try:
        df = con.execute(f"SELECT path, bytes, mtime_ns, sha256, rows, fingerprint FROM "
                         f"{META}.verified_files").df()
    except duckdb.Error:  # a store written before the table existed
        return {}
    finally:
        con.close()
    return {r["path"]: r for r in df.to_dict("records")}


def agg_table(m: Manifest) -> str:
    """The table of sums per batch and grain bucket (one per grain: ``agg_3600s``)."""
    return f"agg_{int(m.grain_td.total_seconds())}s"


def manifest_from_dict(d: dict) -> Manifest:
    """Rebuild a :class:`Manifest` from :meth:`Manifest.to_dict` output."""
    from .._types import MetricSpec

    metrics = {}
    for k, v in d["metrics"].items():
        if "sum" in v:
            metrics[k] = MetricSpec(k, "sum", v["sum"], None, v.get("better", "higher"),
                                    v.get("unit"))
        else:
            metrics[k] = MetricSpec(k, "ratio", v["ratio"][0], v["ratio"][1],
                                    v.get("better", "higher"), v.get("unit"))
    return Manifest(name=d["name"], time_column=d["time_column"], grain=d["grain"],
                    grain_td=parse_grain(d["grain"]), dimensions=tuple(d["dimensions"]),
                    hierarchies=dict(d["hierarchies"]), measures=dict(d["measures"]),
                    metrics=metrics, pii=tuple(d.get("pii", ())), sources=d.get("sources", {}),
                    files=d.get("files", {}), raw=d)
