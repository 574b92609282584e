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
from workbench.sources import Source

from workbench.passport.text import decode_utf8, missing_keys

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


EXPECTED = "a warehouse.yaml source manifest (a YAML mapping)"
#: Keys a source manifest must have, and what they hold.
_REQUIRED = {
    "dimensions": "a list of the dimension columns (as in passport.yaml)",
    "measures": "a mapping of the numeric columns (as in passport.yaml)",
    "metrics": "a mapping of name -> {sum: MEASURE} or {ratio: [NUMERATOR, DENOMINATOR]} "
               "(as in passport.yaml)",
    "tables.events.query": "the SQL that returns the facts",
}


def _yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """A YAML error in one line: where, what, and whether the file looks cut short."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    msg = "is not valid YAML"
    if mark is not None:
        msg += f" at line {mark.line + 1}, column {mark.column + 1}"
    msg += f": {problem}" + (f" ({context})" if context else "")
    if mark is not None and not text[mark.index:].strip():
        msg += "; the file ends in the middle of a value (truncated?)"
    return " ".join(f"{msg}; expected {EXPECTED}".split())


def read_manifest(path: Path):
    """``(spec, manifest)``: the raw ``warehouse.yaml`` and its passport keys validated as a
    :class:`workbench.passport.Manifest`; a bad file raises one located PassportError."""
    from workbench.passport import parse_manifest

    text = decode_utf8(path.read_bytes(), path, EXPECTED)
    if not text.strip():
        raise PassportError(f"is empty; expected {EXPECTED}", file=str(path))
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PassportError(_yaml_error(exc, text), file=str(path)) from None
    if not isinstance(spec, dict):
        raise PassportError(f"holds a YAML {type(spec).__name__}, not a mapping; expected "
                            f"{EXPECTED}", file=str(path))
    tables = spec.get("tables")
    has = {k: bool(spec.get(k)) for k in ("dimensions", "measures", "metrics")}
    has["tables.events.query"] = (isinstance(tables, dict) and isinstance(tables.get("events"), dict)
                                  and bool(str(tables["events"].get("query") or "").strip()))
    missing = [k for k, ok in has.items() if not ok]
    if missing:
        raise PassportError(missing_keys(missing, _REQUIRED), file=str(path))
    unknown = set(tables) - {"events", "changes"}
    if unknown:
        raise PassportError(f"key 'tables' names {sorted(unknown)}; supported tables are events "
                            "and changes", file=str(path))
    changes = tables.get("changes")
    if changes is not None and not isinstance(changes, dict):
        raise PassportError("key 'tables.changes': expected a mapping with a query, got "
                            f"{changes!r}"[:200], file=str(path))
    attach = spec.get("attach") or {}
    if not isinstance(attach, dict) or not all(_ALIAS.match(str(k)) for k in attach):
        raise PassportError("key 'attach' must map an SQL alias to a DuckDB database file",
                            file=str(path))
    # the passport keys are checked by the passport's own validator, before any query runs,
    # so their errors name warehouse.yaml rather than the passport.yaml written from it
    raw = {k: spec[k] for k in _PASSPORT_KEYS if k in spec}
    raw.setdefault("name", path.parent.name)
    with tempfile.TemporaryDirectory(prefix="wb-warehouse-") as tmp:
        (Path(tmp) / "passport.yaml").write_text(
            yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
        try:
            manifest = parse_manifest(tmp)
        except PassportError as exc:
            raise PassportError(exc.detail, file=str(path)) from None
    return spec, manifest


def load_manifest(path: Path) -> dict:
    """The raw ``warehouse.yaml``, checked (see :func:`read_manifest`)."""
    return read_manifest(path)[0]


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
        spec, manifest = read_manifest(mpath)
        base = mpath.parent
        # attach, describe and run what can fail before the writer stages anything
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        con.execute("SET enable_progress_bar=false")
        con.execute(f"SET file_search_path={_lit(str(base))}")
        dbs = []
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
            dbs.append(db)

        time_col = manifest.time_column
        dims = list(manifest.dimensions)
        hier = dict(manifest.hierarchies)
        measures = dict(manifest.measures)
        engine = f"duckdb {duckdb.__version__}"

        q_events = str(spec["tables"]["events"]["query"]).strip().rstrip(";")
        cols = self._describe(con, q_events, mpath, "events")
        need = [time_col] + dims + [h for h in hier if h not in dims] + list(measures)
        missing = [c for c in need if c not in cols]
        if missing:
            raise PassportError(f"key 'tables.events.query' returns no column(s) "
                                f"{', '.join(missing)} named in the manifest; it returns: "
                                f"{', '.join(cols)}", file=str(mpath))
        ch_spec = spec["tables"].get("changes") or {}
        q_changes = str(ch_spec.get("query") or "").strip().rstrip(";")
        changes = self._changes(con, q_changes, mpath) if q_changes else None

        w = self.writer(out_dir, overwrite=overwrite)
        man_rec = w.add_input(mpath)
        attached = [w.add_input(db) for db in dbs]

        # ------------------------------------------------------------------ events
        ev_files = [w.add_input(f) for f in _query_files(q_events, base)]
        sel = [f"CAST({_q(time_col)} AS TIMESTAMPTZ) AS ts"]
        sel += [f"{_q(c)}" for c in dims + [h for h in hier if h not in dims]]
        sel += [f"CAST({_q(m)} AS DOUBLE) AS {_q(m)}" for m in measures]
        order = ", ".join(str(i) for i in range(1, len(dims) + len(hier) + 2))
        w.set_manifest(name=manifest.name, grain=manifest.grain,
                       dimensions=dims, hierarchies=hier, measures=measures,
                       metrics=spec["metrics"], pii=list(manifest.pii) or None)
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
        if changes is not None:
            for i, r in enumerate(changes, start=1):
                r["source"] = w.row_source(man_rec, record=f"tables.changes.query row {i} "
                                                           f"(id={r['id']})")
            ch_files = [w.add_input(f) for f in _query_files(q_changes, base)]
            w.add_changes(changes, inputs=[man_rec] + attached + ch_files,
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

    def _changes(self, con, query: str, mpath: Path) -> list[dict]:
        """The change rows of ``tables.changes.query`` (without ``source``, which the writer
        gives), checked: the columns a change log needs, a scope that is a JSON object."""
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
            try:
                scope = json.loads(r["scope"]) if r["scope"] not in (None, "null") else {}
                if isinstance(scope, str):  # a JSON string column: to_json quoted it once more
                    scope = json.loads(scope) if scope.strip() else {}
            except json.JSONDecodeError:
                raise PassportError(f"key 'tables.changes.query' row {i} (id={r['id']}): scope "
                                    f"{json.loads(r['scope'])!r} is not JSON; expected a JSON "
                                    "object, a STRUCT or a MAP of dimension -> value",
                                    file=str(mpath)) from None
            r["scope"] = scope if isinstance(scope, dict) else {}
            r["rollout"] = r.get("rollout")
            r["author"] = r.get("author")
            rows.append(r)
        return rows
