"""Sources: the base class of source plug-ins and the passport writer they use.

Moved out of :mod:`workbench.registry`, which keeps discovery only (entry
points, built-ins, :func:`~workbench.registry.plugin_identity`).

The Source API
--------------
A *source* turns an outside format into a passport (``shared/spec/passport.md``).
It is any object (usually a class instantiated with no arguments) with:

``name`` : str
    Short lowercase name (``otel``); also the entry-point name.
``describe() -> str``
    One line: what it reads and what it writes.
``sample_input() -> pathlib.Path``
    Its bundled sample input (a file or a folder); ``to_passport`` of it must
    give a passport that ``workbench investigate`` accepts.
``to_passport(inputs, out_dir, **options) -> pathlib.Path``
    Read ``inputs`` (a path or a list of paths), write or merge passport
    tables into ``out_dir`` and return ``out_dir``. Bad input raises a
    :class:`~workbench.errors.WorkbenchError` naming the file and what was
    expected, and leaves ``out_dir`` as it was.

Provenance is part of the contract. For every table a source writes,
``passport.yaml`` ``sources.<table>`` keeps the spec's ``origin``,
``extracted_at`` and ``transform`` and adds ``contributions``: one entry per
plug-in that wrote rows, with the plug-in (name, package, version), every input
file (path, sha256, bytes), the transform steps and the row count. Every row of
``changes`` and ``logs`` carries a ``source`` object (plug-in, input file,
sha256 and where in the file it came from); ``events`` rows are aggregates of
many input records, so their provenance is the table's contribution.
:class:`PassportWriter` does all of this; subclassing :class:`Source` is
optional.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ._format import iso, json_default
from .errors import PassportError, UsageError
from .registry import plugin_identity

__all__ = ["PassportWriter", "Source", "as_input_paths"]


class Source:
    """Optional base class of source plug-ins (see the module docstring).

    Subclasses set ``name`` and implement :meth:`sample_input` and
    :meth:`to_passport`; :meth:`writer` gives a :class:`PassportWriter` that
    records provenance.
    """

    name: str = ""

    def describe(self) -> str:
        doc = (type(self).__doc__ or "").strip().splitlines()
        return doc[0] if doc else self.name

    def sample_input(self) -> Path:
        raise NotImplementedError

    def to_passport(self, inputs, out_dir, **options) -> Path:
        raise NotImplementedError

    def writer(self, out_dir: str | Path, *, overwrite: bool = False,
               base: str | Path | None = None) -> "PassportWriter":
        return PassportWriter(self, out_dir, overwrite=overwrite, base=base)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} source {self.name!r}>"


def as_input_paths(inputs, *, patterns: tuple[str, ...] = ("*",)) -> list[Path]:
    """``inputs`` (a path, a folder or a list of them) as a sorted list of files.

    Folders are searched recursively for files matching ``patterns``; a path
    that does not exist raises a :class:`PassportError` naming it.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise PassportError("does not exist; expected an input file or folder", file=str(p))
        if p.is_dir():
            files = sorted({f for pat in patterns for f in p.rglob(pat) if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts)})
            out += files
        else:
            out.append(p)
    if not out:
        raise PassportError(f"no input file matching {', '.join(patterns)}",
                            file=", ".join(str(x) for x in inputs))
    return out


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path) -> str:
    from .passport import sha256_file

    return sha256_file(path)


_CHANGE_COLUMNS = ("id", "ts", "kind", "target", "description", "scope", "rollout", "author",
                   "source")


class PassportWriter:
    """Write or merge passport tables with provenance, atomically.

    Tables are staged in a hidden folder inside ``out_dir``, the staged
    passport is validated with :func:`workbench.passport.load_passport`, and
    only then moved into place: a failing adapter leaves ``out_dir`` as it was.

    * ``events`` are one table per passport: writing them when another plug-in
      wrote the current ones raises unless ``overwrite=True``; the same
      plug-in re-running replaces its own.
    * ``changes`` and ``logs`` merge: rows this plug-in wrote from the same input
      files before are replaced, rows of other sources are kept.

    Examples
    --------
    >>> w = PassportWriter(my_source, "out")                    # doctest: +SKIP
    >>> inp = w.add_input("deployments.json")                   # doctest: +SKIP
    >>> w.add_changes(frame, transform=["one row per deployment"])  # doctest: +SKIP
    >>> w.finish()                                              # doctest: +SKIP
    """

    def __init__(self, source: Any, out_dir: str | Path, *, overwrite: bool = False,
                 base: str | Path | None = None):
        self.source = source
        self.plugin = plugin_identity(source)
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        # the passport merged into: out_dir when it holds one, else ``base`` (copied over)
        self.from_dir = self.out_dir
        if not (self.out_dir / "passport.yaml").is_file() and base is not None:
            self.from_dir = Path(base)
            if not (self.from_dir / "passport.yaml").is_file():
                raise PassportError("is not a passport (no passport.yaml); expected the passport "
                                    "to merge change rows into", file=str(self.from_dir))
        self.inputs: list[dict] = []
        self._staged: dict[str, tuple[Path, dict]] = {}  # table -> (file, contribution)
        self._manifest: dict | None = None
        self._existing = self._read_existing()
        self._tmp = Path(tempfile.mkdtemp(prefix="wb-stage-"))
        # the staging folder goes when the writer does, even if the adapter raised
        # before finish() (or never called it)
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._tmp), True)

    def __enter__(self) -> "PassportWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup()

    @property
    def existing_manifest(self) -> dict | None:
        """The raw ``passport.yaml`` of the passport merged into (None if there is none)."""
        return self._existing

    # ----------------------------------------------------------------- inputs
    def add_input(self, path: str | Path) -> dict:
        """Record an input file (path, sha256, bytes); returns its record."""
        p = Path(path).resolve()
        for rec in self.inputs:
            if rec["path"] == str(p):
                return rec
        rec = {"path": str(p), "sha256": _sha256(p), "bytes": p.stat().st_size}
        self.inputs.append(rec)
        return rec

    def row_source(self, input_rec: dict | None, record: str | None = None, **extra) -> dict:
        """The ``source`` object a row carries (plug-in, input file, hash, locator)."""
        d = {"plugin": self.plugin["name"], "package": self.plugin["package"],
             "version": self.plugin["version"]}
        if input_rec is not None:
            d["input"] = input_rec["path"]
            d["sha256"] = input_rec["sha256"]
        if record is not None:
            d["record"] = record
        d.update(extra)
        return d

    # ----------------------------------------------------------------- existing passport
    def _read_existing(self) -> dict | None:
        import yaml

        mpath = self.from_dir / "passport.yaml"
        if not mpath.is_file():
            return None
        try:
            raw = yaml.safe_load(mpath.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PassportError(f"is not valid YAML, cannot merge into it: {exc}",
                                file=str(mpath)) from None
        if not isinstance(raw, dict):
            raise PassportError("expected a YAML mapping, cannot merge into it", file=str(mpath))
        return raw

    def _contribution(self, rows: int, transform: Iterable[str], inputs: list[dict] | None,
                      **extra) -> dict:
        c = {"plugin": dict(self.plugin), "extracted_at": _now_iso(),
             "inputs": [dict(i) for i in (inputs if inputs is not None else self.inputs)],
             "transform": [str(t) for t in transform], "rows": int(rows)}
        c.update(extra)
        return c

    def _mine(self, src: Any) -> bool:
        return isinstance(src, dict) and src.get("plugin") == self.plugin["name"]

    # ----------------------------------------------------------------- tables
    def set_manifest(self, *, name: str, dimensions: list[str], measures: dict,
                     metrics: dict, grain: str = "1h", hierarchies: dict | None = None,
                     pii: list[str] | None = None) -> None:
        """The manifest keys that come with the events this source writes."""
        m = {"name": name, "time_column": "ts", "grain": grain,
             "dimensions": list(dimensions)}
        if hierarchies:
            m["hierarchies"] = dict(hierarchies)
        m["measures"] = {k: dict(v or {}) for k, v in measures.items()}
        m["metrics"] = {k: dict(v) for k, v in metrics.items()}
        if pii:
            m["pii"] = list(pii)
        self._manifest = m

    def write_events(self, data, *, transform: Iterable[str], origin: str,
                     inputs: list[dict] | None = None, **extra) -> None:
        """Stage ``events.parquet`` from a DataFrame or a ``(duckdb_con, sql)`` pair.

        Rows are written in ``ts`` order; ``ts`` must be UTC.
        """
        if self._manifest is None:
            raise UsageError("PassportWriter.set_manifest(...) must come before write_events")
        ex = self._existing
        if ex is not None and not self.overwrite:
            prev = ((ex.get("sources") or {}).get("events") or {})
            prev_plugins = {c.get("plugin", {}).get("name") for c in prev.get("contributions", [])
                            if isinstance(c, dict)}
            if prev_plugins != {self.plugin["name"]}:
                who = ", ".join(sorted(p for p in prev_plugins if p)) or (
                    prev.get("origin") or "another source")
                raise PassportError(
                    f"already holds events from {who}; a passport has one fact table. Write "
                    "to a new folder, or pass overwrite=True to replace them",
                    file=str(self.out_dir))
        path = self._tmp / "events.parquet"
        if isinstance(data, tuple):
            con, sql = data
            from .store.sql import lit

            con.execute(f"COPY ({sql}) TO {lit(path.as_posix())} (FORMAT parquet)")
            rows = con.execute("SELECT count(*) FROM read_parquet(?)", [path.as_posix()]
                               ).fetchone()[0]
        else:
            data.to_parquet(path, index=False)
            rows = len(data)
        self._staged["events"] = (path, self._contribution(rows, transform, inputs,
                                                           origin=origin, **extra))

    def _existing_rows(self, table: str) -> list[dict]:
        if self._existing is None:
            return []
        from .passport.load import _find_table_files, _read_small_table
        from .passport.manifest import parse_manifest

        try:
            manifest = parse_manifest(self.from_dir)
            files = _find_table_files(self.from_dir, manifest, table)
        except PassportError:
            files = [p for p in (self.from_dir / f"{table}.jsonl",) if p.is_file()]
        if not files or files[0].stat().st_size == 0 or (
                files[0].suffix == ".jsonl" and not files[0].read_text(errors="replace").strip()):
            return []
        df, lines = _read_small_table(files[0], files[0].name)
        rows = _records(df)
        sha = None
        for r, line in zip(rows, lines):
            if not isinstance(r.get("source"), dict):
                # rows that came without provenance get the file they were found in
                sha = sha or _sha256(files[0])
                r["source"] = {"plugin": "passport", "input": str(files[0].resolve()),
                               "sha256": sha, "record": f"line {line}"}
        return rows

    def add_changes(self, rows: Any, *, transform: Iterable[str], origin: str,
                    inputs: list[dict] | None = None, **extra) -> None:
        """Stage change rows (a DataFrame or list of dicts with the spec's columns
        and ``source``), merged with the rows already in ``out_dir``."""
        self._merge("changes", rows, transform, origin, inputs, extra, key="id")

    def add_logs(self, rows: Any, *, transform: Iterable[str], origin: str,
                 inputs: list[dict] | None = None, **extra) -> None:
        """Stage log records (``logs.jsonl``), merged like changes."""
        self._merge("logs", rows, transform, origin, inputs, extra, key=None)

    def _merge(self, table, rows, transform, origin, inputs, extra, key):
        new = _records(rows)
        for r in new:
            if not isinstance(r.get("source"), dict) or "plugin" not in r["source"]:
                raise UsageError(f"every {table} row needs a 'source' object "
                                 "(use PassportWriter.row_source)")
        my_inputs = {i["path"] for i in (inputs if inputs is not None else self.inputs)}
        kept = [r for r in self._existing_rows(table)
                if not (self._mine(r.get("source")) and
                        (r["source"].get("input") in my_inputs or not my_inputs))]
        if key is not None:
            ids = {r[key] for r in new}
            dup = [r[key] for r in kept if r.get(key) in ids]
            if dup:
                raise PassportError(f"change id {dup[0]!r} is already used by a row from "
                                    "another source; ids must be unique",
                                    file=str(self.out_dir / "changes.jsonl"))
        allrows = kept + new
        if table == "changes":
            allrows.sort(key=lambda r: (str(r.get("ts")), str(r.get("id"))))
        path = self._tmp / f"{table}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for r in allrows:
                f.write(json.dumps(r, default=_json_default, sort_keys=False) + "\n")
        self._staged[table] = (path, self._contribution(len(new), transform, inputs,
                                                        origin=origin, **extra))

    # ----------------------------------------------------------------- finish
    def finish(self) -> Path:
        """Validate the staged passport, then move it into ``out_dir``; returns ``out_dir``."""
        import yaml

        from .passport import load_passport

        try:
            raw = dict(self._existing or {})
            if self._manifest is not None:
                for k in ("name", "time_column", "grain", "dimensions", "hierarchies",
                          "measures", "metrics", "pii"):
                    raw.pop(k, None)
                raw = {**self._manifest, **raw}
            elif not raw:
                raise PassportError(
                    f"has no passport.yaml and the {self.plugin['name']} source writes no "
                    "events: convert a fact source into it first (e.g. otel or warehouse), or "
                    "pass base=PASSPORT_DIR", file=str(self.out_dir))
            sources = dict(raw.get("sources") or {})
            for table, (_, contrib) in self._staged.items():
                sources[table] = _merge_source_entry(sources.get(table), contrib,
                                                     self.plugin["name"],
                                                     replace=(table == "events"))
            raw["sources"] = sources
            stage = self._tmp / "passport"
            stage.mkdir()
            for table, (path, _) in self._staged.items():
                os.replace(path, stage / path.name)
            staged_names = {p.name for p, _ in self._staged.values()}
            replaced = self._replaced_files(staged_names)
            carried: list[Path] = []  # files of the passport merged into, kept as they are
            if self.from_dir.is_dir() and self._existing is not None:
                for f in self.from_dir.iterdir():
                    if f.name in staged_names or f in replaced or f.name == "passport.yaml" \
                            or f.name.startswith("."):
                        continue
                    carried.append(f)
                    (stage / f.name).symlink_to(f.resolve(), target_is_directory=f.is_dir())
            (stage / "passport.yaml").write_text(
                yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100),
                encoding="utf-8")
            try:  # the carried files are symlinks into the base passport
                load_passport(stage, data_roots=(self.from_dir,))
            except PassportError as exc:
                raise PassportError(f"the {self.plugin['name']} source produced a passport "
                                    f"that does not validate: {exc}",
                                    file=str(self.out_dir)) from None
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.from_dir.resolve() != self.out_dir.resolve():
                for f in carried:  # a base passport is copied, never changed
                    if f.is_dir():
                        shutil.copytree(f, self.out_dir / f.name, dirs_exist_ok=True)
                    else:
                        shutil.copy2(f, self.out_dir / f.name)
            else:
                for f in replaced:
                    f.unlink()
            for name in sorted(staged_names) + ["passport.yaml"]:
                shutil.move(str(stage / name), str(self.out_dir / name))
            return self.out_dir
        finally:
            self._cleanup()

    def _replaced_files(self, staged_names: set[str]) -> list[Path]:
        """Other-format files of a staged table (changes.csv when changes.jsonl is staged)."""
        out = []
        exts = {"events": (".csv", ".parquet"), "changes": (".csv", ".parquet", ".jsonl"),
                "logs": (".jsonl",)}
        for name in staged_names:
            table = name.split(".")[0]
            for e in exts.get(table, ()):
                f = self.from_dir / f"{table}{e}"
                if f.name != name and f.is_file():
                    out.append(f)
        return out


def _merge_source_entry(prev: Any, contrib: dict, plugin: str, *, replace: bool) -> dict:
    prev = prev if isinstance(prev, dict) else ({"origin": str(prev)} if prev else {})
    old = [c for c in prev.get("contributions", []) if isinstance(c, dict)]
    if replace:
        old = []
    else:
        # a re-run replaces this plug-in's earlier contribution from the same inputs
        mine = {i["path"] for i in contrib["inputs"]}
        old = [c for c in old if not (c.get("plugin", {}).get("name") == plugin and
                                      {i.get("path") for i in c.get("inputs", [])} <= mine)]
    legacy = [] if (replace or old or prev.get("contributions")) else (
        [prev["origin"]] if prev.get("origin") else [])
    contribs = old + [contrib]
    origins = legacy + [c.get("origin") or c["plugin"]["name"] for c in contribs]
    transform = list(prev.get("transform") or []) if legacy else []
    for c in contribs:
        transform += [f"{c['plugin']['name']}: {t}" for t in c.get("transform", [])]
    return {"origin": " + ".join(dict.fromkeys(origins)),
            "extracted_at": max(c["extracted_at"] for c in contribs),
            "transform": transform, "contributions": contribs}


def _records(data) -> list[dict]:
    """Rows (a frame or a list of dicts) as JSON-ready dicts: NaN/NaT -> None, times -> ISO UTC."""
    if isinstance(data, list):
        rows = data
    else:
        cols = list(data.columns)
        rows = [dict(zip(cols, row)) for row in data.itertuples(index=False, name=None)]
    return [{k: _clean(v) for k, v in r.items()} for r in rows]


def _clean(v):
    import math

    import pandas as pd

    if isinstance(v, (dict, list, str, bool)) or v is None:
        return v
    if isinstance(v, (pd.Timestamp,)) or (hasattr(v, "isoformat") and hasattr(v, "year")):
        return None if _isna(v) else _iso(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    if _isna(v):
        return None
    if hasattr(v, "item") and not hasattr(v, "__len__"):  # numpy scalars
        return v.item()
    return v


def _isna(v) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


_iso = iso
_json_default = json_default
