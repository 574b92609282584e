"""Warehouse source for the Divergence Workbench (entry point ``workbench.sources: warehouse``).

A passport declared as SQL over anything DuckDB reads: Parquet or CSV files
and folders (globs, hive partitions), attached DuckDB database files, and the
tables they hold. The input is a source manifest, ``warehouse.yaml``::

    name: shop-orders-2026-11          # the passport's keys: name, grain, time_column,
    grain: 1h                          # dimensions, hierarchies, measures, metrics, pii
    attach: {ops: ops.duckdb}          # alias -> DuckDB file, opened read-only
    dimensions: [country, platform]
    measures: {sessions: {}, orders: {}}
    metrics: {conversion_rate: {ratio: [orders, sessions], better: higher}}
    tables:
      events:  {query: "SELECT ... FROM read_parquet('facts/*.parquet') GROUP BY ALL"}
      changes: {query: "SELECT ... FROM ops.change_calendar"}     # optional

Relative paths in queries resolve against the manifest's folder. ``events``
must return the time column, every dimension (and hierarchy column) and every
measure; ``changes`` must return ``id, ts, kind, target, description, scope``
(``scope`` a JSON string, a STRUCT or a MAP) and may return ``rollout`` and
``author``. Without a ``changes`` query the change log is empty (or the one
already in ``out_dir`` is kept).

Provenance: each query is kept verbatim in ``passport.yaml``
``sources.<table>.contributions[].query`` with the DuckDB version; the inputs
recorded (path, sha256, bytes) are the manifest, every attached database and
every file a quoted path or glob in a query matches. Each change row's
``source`` names the manifest, its hash and the query row it came from.
"""
from __future__ import annotations

import glob
import json
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from workbench.errors import PassportError
from workbench.registry import Source

__version__ = "0.1.0"
__all__ = ["WarehouseSource", "__version__"]

DATA = Path(__file__).parent / "data" / "sample"
MANIFEST_NAMES = ("warehouse.yaml", "warehouse.yml")
_PASSPORT_KEYS = ("name", "time_column", "grain", "dimensions", "hierarchies", "measures",
                  "metrics", "pii")
_CHANGE_COLS = ("id", "ts", "kind", "target", "description", "scope")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def find_manifest(inputs) -> Path:
    """The source manifest among ``inputs`` (a YAML file, or a folder holding one)."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if len(items) != 1:
        raise PassportError("expected one warehouse.yaml (or a folder holding one)",
                            file=", ".join(map(str, items)))
    p = Path(items[0])
    if not p.exists():
        raise PassportError("does not exist; expected a warehouse.yaml source manifest or its "
                            "folder", file=str(p))
    if p.is_dir():
        for n in MANIFEST_NAMES:
            if (p / n).is_file():
                return p / n
        raise PassportError(f"holds no {' or '.join(MANIFEST_NAMES)}", file=str(p))
    return p


def load_manifest(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PassportError(f"is not valid YAML: {exc}", file=str(path)) from None
    if not isinstance(spec, dict):
        raise PassportError("expected a YAML mapping", file=str(path))
    tables = spec.get("tables")
    if not isinstance(tables, dict) or not isinstance(tables.get("events"), dict) or \
            not str(tables["events"].get("query") or "").strip():
        raise PassportError("key 'tables.events.query' is required: the SQL that returns the "
                            "facts", file=str(path))
    unknown = set(tables) - {"events", "changes"}
    if unknown:
        raise PassportError(f"key 'tables' names {sorted(unknown)}; supported tables are events "
                            "and changes", file=str(path))
    for key in ("dimensions", "measures", "metrics"):
        if not spec.get(key):
            raise PassportError(f"key '{key}' is required (as in passport.yaml)", file=str(path))
    attach = spec.get("attach") or {}
    if not isinstance(attach, dict) or not all(_ALIAS.match(str(k)) for k in attach):
        raise PassportError("key 'attach' must map an SQL alias to a DuckDB database file",
                            file=str(path))
    return spec


def _query_files(query: str, base: Path) -> list[Path]:
    """Files a query names in quoted literals (paths or globs), relative to ``base``."""
    out: set[Path] = set()
    for lit in re.findall(r"'((?:[^']|'')+)'", query):
        lit = lit.replace("''", "'")
        if "/" not in lit and "." not in lit:
            continue
        pat = lit if Path(lit).is_absolute() else str(base / lit)
        for f in glob.glob(pat, recursive=True):
            if Path(f).is_file():
                out.add(Path(f).resolve())
    return sorted(out)


class WarehouseSource(Source):
    """SQL over Parquet/CSV folders and DuckDB databases (declared in warehouse.yaml) ->
    events and changes, the queries kept as provenance."""

    name = "warehouse"

    def sample_input(self) -> Path:
        """The sample warehouse, with its DuckDB database built once into a cache folder."""
        import hashlib

        import duckdb

        h = hashlib.sha256(duckdb.__version__.encode())
        for f in sorted(DATA.rglob("*")):  # keyed by the sample's files: edits rebuild it
            if f.is_file():
                h.update(f.relative_to(DATA).as_posix().encode() + f.read_bytes())
        root = Path(tempfile.gettempdir()) / f"workbench-warehouse-sample-{h.hexdigest()[:12]}"
        if (root / "ops.duckdb").is_file():
            return root
        tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
        try:
            shutil.copytree(DATA, tmp, dirs_exist_ok=True)
            con = duckdb.connect(str(tmp / "ops.duckdb"))
            con.execute("SET TimeZone='UTC'")
            con.execute((tmp / "ops_seed.sql").read_text())
            con.close()
            try:
                tmp.rename(root)
            except OSError:  # built meanwhile by another process
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return root

    def to_passport(self, inputs, out_dir, *, overwrite: bool = False) -> Path:
        """Run the queries of a ``warehouse.yaml`` and write the passport at ``out_dir``.

        Parameters
        ----------
        inputs:
            The source manifest, or the folder that holds ``warehouse.yaml``.
        out_dir:
            The passport folder (created; merged into when it exists: its
            change rows from other sources are kept).
        overwrite:
            Replace events written by another source.
        """
        import duckdb

        mpath = find_manifest(inputs).resolve()
        spec = load_manifest(mpath)
        base = mpath.parent
        w = self.writer(out_dir, overwrite=overwrite)
        man_rec = w.add_input(mpath)
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        con.execute("SET enable_progress_bar=false")
        con.execute(f"SET file_search_path={_lit(str(base))}")
        attached = []
        for alias, rel in (spec.get("attach") or {}).items():
            db = (base / str(rel)).resolve()
            if not db.is_file():
                raise PassportError(f"key 'attach.{alias}' names {rel}, which does not exist",
                                    file=str(mpath))
            try:
                con.execute(f"ATTACH {_lit(str(db))} AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                raise PassportError(f"key 'attach.{alias}': cannot open {rel} as a DuckDB "
                                    f"database: {_first_line(exc)}", file=str(mpath)) from None
            attached.append(w.add_input(db))

        time_col = str(spec.get("time_column") or "ts")
        dims = [str(d) for d in spec["dimensions"]]
        hier = dict(spec.get("hierarchies") or {})
        measures = spec["measures"] if isinstance(spec["measures"], dict) else \
            {m: {} for m in spec["measures"]}
        engine = f"duckdb {duckdb.__version__}"

        # ------------------------------------------------------------------ events
        q_events = str(spec["tables"]["events"]["query"]).strip().rstrip(";")
        cols = self._describe(con, q_events, mpath, "events")
        need = [time_col] + dims + [h for h in hier if h not in dims] + list(measures)
        missing = [c for c in need if c not in cols]
        if missing:
            raise PassportError(f"key 'tables.events.query' returns no column(s) "
                                f"{', '.join(missing)} named in the manifest; it returns: "
                                f"{', '.join(cols)}", file=str(mpath))
        ev_files = [w.add_input(f) for f in _query_files(q_events, base)]
        sel = [f"CAST({_q(time_col)} AS TIMESTAMPTZ) AS ts"]
        sel += [f"{_q(c)}" for c in dims + [h for h in hier if h not in dims]]
        sel += [f"CAST({_q(m)} AS DOUBLE) AS {_q(m)}" for m in measures]
        order = ", ".join(str(i) for i in range(1, len(dims) + len(hier) + 2))
        w.set_manifest(name=str(spec.get("name") or base.name), grain=str(spec.get("grain", "1h")),
                       dimensions=dims, hierarchies=hier, measures=measures,
                       metrics=spec["metrics"], pii=spec.get("pii"))
        try:
            w.write_events((con, f"SELECT {', '.join(sel)} FROM ({q_events}) AS q "
                                 f"ORDER BY {order}"),
                           inputs=[man_rec] + attached + ev_files,
                           origin=f"warehouse query {mpath.name}: tables.events",
                           transform=["run tables.events.query in DuckDB "
                                      "(paths relative to the manifest)",
                                      f"{time_col} -> ts (UTC); measures as DOUBLE",
                                      "rows ordered by time and dimensions"],
                           query=q_events, engine=engine)
        except duckdb.Error as exc:
            raise PassportError(f"key 'tables.events.query' failed: {_first_line(exc)}",
                                file=str(mpath)) from None

        # ------------------------------------------------------------------ changes
        ch_spec = spec["tables"].get("changes")
        if ch_spec and str(ch_spec.get("query") or "").strip():
            q_changes = str(ch_spec["query"]).strip().rstrip(";")
            rows = self._changes(con, q_changes, mpath, w, man_rec)
            ch_files = [w.add_input(f) for f in _query_files(q_changes, base)]
            w.add_changes(rows, inputs=[man_rec] + attached + ch_files,
                          origin=f"warehouse query {mpath.name}: tables.changes",
                          transform=["run tables.changes.query in DuckDB",
                                     "scope parsed from JSON/STRUCT/MAP; ts as UTC"],
                          query=q_changes, engine=engine)
        elif w.existing_manifest is None:
            w.add_changes([], inputs=[man_rec], origin=f"warehouse {mpath.name}: no changes query",
                          transform=["no tables.changes.query: an empty change log"])
        return w.finish()

    @staticmethod
    def _describe(con, query: str, mpath: Path, table: str) -> list[str]:
        import duckdb

        try:
            return [r[0] for r in con.execute(f"DESCRIBE {query}").fetchall()]
        except duckdb.Error as exc:
            raise PassportError(f"key 'tables.{table}.query' failed: {_first_line(exc)}",
                                file=str(mpath)) from None

    def _changes(self, con, query: str, mpath: Path, w, man_rec) -> list[dict]:
        import duckdb

        cols = self._describe(con, query, mpath, "changes")
        missing = [c for c in _CHANGE_COLS if c not in cols]
        if missing:
            raise PassportError(f"key 'tables.changes.query' returns no column(s) "
                                f"{', '.join(missing)}; a change log needs "
                                f"{', '.join(_CHANGE_COLS)}; it returns: {', '.join(cols)}",
                                file=str(mpath))
        extra = [c for c in ("rollout", "author") if c in cols]
        sel = ", ".join([f"CAST(id AS VARCHAR) AS id", "CAST(ts AS TIMESTAMPTZ) AS ts",
                         "lower(CAST(kind AS VARCHAR)) AS kind", "CAST(target AS VARCHAR) AS target",
                         "CAST(description AS VARCHAR) AS description",
                         "CAST(to_json(scope) AS VARCHAR) AS scope"]
                        + [f"CAST(rollout AS DOUBLE) AS rollout" if c == "rollout"
                           else "CAST(author AS VARCHAR) AS author" for c in extra])
        try:
            df = con.execute(f"SELECT {sel} FROM ({query}) AS q ORDER BY ts, id").df()
        except duckdb.Error as exc:
            raise PassportError(f"key 'tables.changes.query' failed: {_first_line(exc)}",
                                file=str(mpath)) from None
        rows = []
        for i, r in enumerate(df.to_dict("records"), start=1):  # change rows, a few hundred
            scope = json.loads(r["scope"]) if r["scope"] not in (None, "null") else {}
            if isinstance(scope, str):  # a JSON string column: to_json quoted it once more
                scope = json.loads(scope) if scope.strip() else {}
            r["scope"] = scope if isinstance(scope, dict) else {}
            r["rollout"] = r.get("rollout")
            r["author"] = r.get("author")
            r["source"] = w.row_source(man_rec, record=f"tables.changes.query row {i} "
                                                       f"(id={r['id']})")
            rows.append(r)
        return rows
