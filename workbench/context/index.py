"""Build and cache the context index of a passport.

Documents
---------
``change``
    Each row of the change log: kind, target, description, scope, author, id.
``slice``
    Each value of each dimension (``platform = ios``), with its share of the
    first measure (and its coarser value, e.g. the region of a country).
``log``
    Each record of ``logs.jsonl``: body, severity, service, attributes.
``investigation``
    Past investigations of this passport, when a memory index of them exists
    (optional): the records :func:`workbench.investigation.library.memory.load_records`
    reads from ``memory.duckdb`` of the library given as ``investigations``,
    of ``PASSPORT/investigations/`` or of ``PASSPORT/.workbench/investigations/``.

Storage
-------
An inverted index in numpy arrays: a sorted vocabulary, CSR postings (document
ids and term frequencies per term) and document lengths, saved with
``numpy.savez`` in ``PASSPORT/.workbench/context/`` (or a temporary folder when
the passport is read-only) next to ``docs.json`` and ``meta.json``. The index is
rebuilt when the passport's files change: their names, sizes and modification
times are its fingerprint, and a file rewritten with the same bytes (a new
time, the same sha256) does not count as a change. A search never needs pandas
or DuckDB once the index is built.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..store.sql import bound_connection, q
from ..textsearch import tokenize

INDEX_VERSION = 2  # 2: the one tokenizer of workbench.textsearch (a=b is a compound)
KINDS = ("change", "slice", "log", "investigation")
MAX_LOGS = 200_000


@dataclass(frozen=True)
class ContextIndex:
    """A loaded index: vocabulary, postings, document lengths and documents."""

    directory: Path
    vocab: np.ndarray
    term_ptr: np.ndarray
    post_doc: np.ndarray
    post_tf: np.ndarray
    doc_len: np.ndarray
    doc_kind: np.ndarray
    docs: list[dict]
    meta: dict

    @property
    def n_docs(self) -> int:
        return len(self.docs)


# --------------------------------------------------------------------------- where
def cache_dir(passport_dir: Path) -> Path:
    """``PASSPORT/.workbench/context``, or a temp folder if the passport is read-only."""
    d = passport_dir / ".workbench" / "context"
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return d
    except OSError:
        h = hashlib.sha1(str(passport_dir.resolve()).encode()).hexdigest()[:16]
        d = Path(tempfile.gettempdir()) / "workbench-context" / h
        d.mkdir(parents=True, exist_ok=True)
        return d


def fingerprint(passport_dir: Path) -> list[list]:
    """Sizes and modification times of the passport's files (not ``.workbench``)."""
    out = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.name.startswith(".") and e.name != ".workbench":
                continue
            if e.name == ".workbench":
                inv = Path(e.path) / "investigations"
                if inv.is_dir():
                    walk(inv, depth + 1)
                continue
            if e.is_dir(follow_symlinks=True):
                if depth < 2:
                    walk(Path(e.path), depth + 1)
            else:
                st = e.stat()
                out.append([os.path.relpath(e.path, passport_dir), st.st_size, st.st_mtime_ns])

    walk(passport_dir, 0)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _with_hashes(directory: Path, fp: list[list]) -> list[list]:
    return [[rel, size, mtime, _sha256(directory / rel)] for rel, size, mtime in fp]


def fingerprint_matches(directory: Path, stored: list, current: list[list]) -> bool:
    """Same files and sizes; a file whose time changed must still hash the same."""
    if not isinstance(stored, list) or len(stored) != len(current):
        return False
    for old, (rel, size, mtime) in zip(stored, current):
        if not isinstance(old, list) or len(old) < 3 or old[0] != rel or old[1] != size:
            return False
        if old[2] != mtime and (len(old) < 4 or _sha256(directory / rel) != old[3]):
            return False
    return True


# --------------------------------------------------------------------------- documents
def _scope_text(scope) -> str:
    if not isinstance(scope, dict) or not scope:
        return "everywhere"
    parts = []
    for k, v in scope.items():
        vals = v if isinstance(v, list) else [v]
        parts.append(f"{k}={'|'.join(map(str, vals))}")
    return ", ".join(parts)


def _iso(t) -> str | None:
    if t is None:
        return None
    try:
        import pandas as pd

        t = pd.Timestamp(t)
        if pd.isna(t):
            return None
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, TypeError):
        return str(t)


def _change_docs(pp) -> Iterable[tuple[dict, list[str]]]:
    ch = pp.changes
    for r in ch.itertuples(index=False):
        scope = r.scope if isinstance(r.scope, dict) else {}
        scope_vals = " ".join(" ".join(v) if isinstance(v, list) else str(v)
                              for v in scope.values())
        rollout = None if r.rollout is None or (isinstance(r.rollout, float)
                                                and np.isnan(r.rollout)) else float(r.rollout)
        title = f"{r.kind} {r.target}: {r.description}"
        doc = {"kind": "change", "id": str(r.id), "ts": _iso(r.ts), "title": title[:200],
               "text": f"scope {_scope_text(scope)}"
                       + (f"; rollout {rollout:g}%" if rollout is not None else "")
                       + (f"; by {r.author}" if r.author else ""),
               "fields": {"kind": r.kind, "target": r.target, "scope": scope,
                          "rollout": rollout, "author": r.author}}
        # the target and the scope's values count twice: they say what the change touches
        text = " ".join([str(r.id), r.kind, r.target, r.target, str(r.description),
                         " ".join(scope), scope_vals, scope_vals, str(r.author or "")])
        yield doc, tokenize(text)


def _slice_docs(pp) -> Iterable[tuple[dict, list[str]]]:
    import duckdb

    m = pp.manifest
    dims = list(m.all_dimensions)
    first = next(iter(m.measures))
    coarse_of = {fine: coarse for coarse, fine in m.hierarchies.items()}
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    bound_connection(con)
    con.execute(f"CREATE TEMP VIEW ev AS {pp.events_sql()}")

    parts, params = [], []
    for d in dims:
        parent = coarse_of.get(d)
        par = f"any_value({q(parent)})" if parent else "NULL"
        parts.append(f"SELECT ? AS dim, CAST({q(d)} AS VARCHAR) AS value, "
                     f"sum({q(first)}) AS volume, count(*) AS n, {par} AS parent FROM ev GROUP BY 2")
        params.append(d)
    rows = con.execute(" UNION ALL ".join(parts) + " ORDER BY dim, volume DESC",
                       params).fetchall()
    totals: dict[str, float] = {}
    for d, _, vol, _, _ in rows:
        totals[d] = totals.get(d, 0.0) + float(vol or 0.0)
    seen: dict[str, int] = {}
    for d, value, vol, n, parent in rows:
        seen[d] = seen.get(d, 0) + 1
        if seen[d] > 5000:  # high-cardinality dimensions: the 5000 biggest values
            continue
        share = float(vol or 0.0) / totals[d] if totals.get(d) else 0.0
        extra = f" in {coarse_of[d]} {parent}" if parent else ""
        doc = {"kind": "slice", "id": f"{d}={value}", "ts": None,
               "title": f"{d} = {value}",
               "text": f"{share:.1%} of {first}{extra}; {n} rows",
               "fields": {"filter": {d: value}, "share": round(share, 6), "rows": int(n),
                          "parent": {coarse_of[d]: parent} if parent else None}}
        yield doc, tokenize(f"{d} {value} {value} {parent or ''}")


def _flatten_strings(obj, out: list[str], depth: int = 0) -> None:
    if depth > 6 or len(out) > 400:
        return
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k == "source":
                continue
            _flatten_strings(v, out, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:100]:
            _flatten_strings(v, out, depth + 1)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        pass


def _log_docs(path: Path) -> Iterable[tuple[dict, list[str]]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, start=1):
            if i > MAX_LOGS:
                break
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict):
                continue
            body = rec.get("body")
            body = body if isinstance(body, str) else json.dumps(body)
            sev = rec.get("severity_text") or rec.get("severity") or rec.get("severityText") or ""
            svc = rec.get("service") or (rec.get("resource") or {}).get("service.name") or ""
            strings: list[str] = []
            _flatten_strings({k: v for k, v in rec.items() if k not in ("body", "ts")}, strings)
            doc = {"kind": "log", "id": f"logs.jsonl:{i}",
                   "ts": rec.get("ts") or rec.get("time") or rec.get("timestamp"),
                   "title": f"[{sev}] {svc}: {body}"[:200] if svc else f"[{sev}] {body}"[:200],
                   "text": body[:300],
                   "fields": {"service": svc or None, "severity": sev or None,
                              "trace_id": rec.get("trace_id"), "line": i}}
            yield doc, tokenize(" ".join([body, body, str(sev), str(svc)] + strings))


def memory_files(directory: Path, investigations: str | Path | None = None) -> list[Path]:
    """Memory indexes of past investigations that exist (``memory.duckdb``).

    ``investigations`` (a library folder or its ``memory.duckdb``) first, then
    ``PASSPORT/investigations/`` and ``PASSPORT/.workbench/investigations/``.
    """
    cands = [Path(investigations)] if investigations else []
    cands += [directory / "investigations", directory / ".workbench" / "investigations"]
    out: list[Path] = []
    for c in cands:
        p = c if c.suffix == ".duckdb" else c / "memory.duckdb"
        if p.is_file() and p.resolve() not in out:
            out.append(p.resolve())
    return out


def _investigation_records(directory: Path, passport: str,
                           investigations: str | Path | None) -> list[dict]:
    files = memory_files(directory, investigations)
    if not files:
        return []
    from ..investigation.library.memory import load_records  # the other half of issue 9's memory

    recs: list[dict] = []
    for f in files:
        recs += [r for r in load_records(f) if isinstance(r, dict)
                 and r.get("passport") in (None, passport)]  # this passport's past
    return recs


def _investigation_docs(directory: Path, passport: str, investigations
                        ) -> Iterable[tuple[dict, list[str]]]:
    for i, rec in enumerate(_investigation_records(directory, passport, investigations)):
        rid = str(rec.get("investigation_id") or rec.get("id") or rec.get("artifact")
                  or f"investigation-{i + 1}")
        div = rec.get("divergence") if isinstance(rec.get("divergence"), dict) else {}
        onset = rec.get("onset") or div.get("onset")
        title = " ".join(str(x) for x in (rec.get("title") or rec.get("metric") or "investigation",
                                          rec.get("verdict") or "",
                                          f"(onset {onset})" if onset else "") if x)
        strings: list[str] = []
        _flatten_strings(rec, strings)
        top = (rec.get("causes") or [{}])[0] if isinstance(rec.get("causes"), list) else {}
        summary = str(rec.get("text") or rec.get("summary") or " ".join(strings[:12]))
        doc = {"kind": "investigation", "id": rid, "ts": onset or rec.get("created_at"),
               "title": title[:200], "text": summary[:300],
               "fields": {"metric": rec.get("metric"), "verdict": rec.get("verdict"),
                          "status": rec.get("status"), "resolution": rec.get("resolution"),
                          "top_cause": top.get("change_id") if isinstance(top, dict) else None,
                          "artifact": rec.get("artifact")}}
        yield doc, tokenize(" ".join([title] + strings))


# --------------------------------------------------------------------------- build / load
def _assemble(directory: Path, docs_tokens: list[tuple[dict, list[str]]], meta: dict
              ) -> ContextIndex:
    docs = [d for d, _ in docs_tokens]
    n = len(docs)
    lens = np.array([len(t) for _, t in docs_tokens], dtype=np.int64)
    all_tokens = [tok for _, toks in docs_tokens for tok in toks]
    doc_of = np.repeat(np.arange(n, dtype=np.int64), lens)
    if all_tokens:
        vocab, term_of = np.unique(np.array(all_tokens, dtype=str), return_inverse=True)
        key = term_of.astype(np.int64) * max(n, 1) + doc_of
        uniq, tf = np.unique(key, return_counts=True)
        post_term = uniq // max(n, 1)
        post_doc = (uniq % max(n, 1)).astype(np.int32)
        counts = np.bincount(post_term, minlength=len(vocab))
        term_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    else:
        vocab = np.array([], dtype=str)
        post_doc = np.array([], dtype=np.int32)
        tf = np.array([], dtype=np.int64)
        term_ptr = np.zeros(1, dtype=np.int64)
    kinds = np.array([KINDS.index(d["kind"]) for d in docs], dtype=np.int8)
    return ContextIndex(directory=directory, vocab=vocab, term_ptr=term_ptr, post_doc=post_doc,
                        post_tf=tf.astype(np.float32), doc_len=lens.astype(np.float32),
                        doc_kind=kinds, docs=docs, meta=meta)


def _full_fingerprint(directory: Path, investigations) -> list[list]:
    fp = fingerprint(directory)
    for f in memory_files(directory, investigations):
        if directory not in f.parents:  # a library outside the passport counts too
            st = f.stat()
            fp.append([str(f), st.st_size, st.st_mtime_ns])
    return fp


def build_index(passport_dir: str | Path, *, save: bool = True,
                investigations: str | Path | None = None) -> ContextIndex:
    """Read the passport and build its context index (and save it in the cache folder).

    ``investigations``: an investigations library (folder of ``memory.duckdb``)
    whose past investigations of this passport are indexed too.
    """
    from ..passport import load_passport

    t0 = time.perf_counter()
    directory = Path(passport_dir).resolve()
    fp = _full_fingerprint(directory, investigations)
    pp = load_passport(directory)
    docs_tokens: list[tuple[dict, list[str]]] = []
    docs_tokens += list(_change_docs(pp))
    docs_tokens += list(_slice_docs(pp))
    if "logs" in pp.extra_files:
        docs_tokens += list(_log_docs(pp.extra_files["logs"]))
    docs_tokens += list(_investigation_docs(directory, pp.name, investigations))
    counts = {k: sum(1 for d, _ in docs_tokens if d["kind"] == k) for k in KINDS}
    meta = {"version": INDEX_VERSION, "passport": pp.name,
            "fingerprint": _with_hashes(directory, fp),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "documents": counts, "build_seconds": None}
    idx = _assemble(directory, docs_tokens, meta)
    meta["build_seconds"] = round(time.perf_counter() - t0, 3)
    meta["terms"] = int(len(idx.vocab))
    if save:
        _save(idx, cache_dir(directory))
    _MEMO[str(directory)] = idx
    return idx


def _save(idx: ContextIndex, d: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".ctx-", dir=d))
    try:
        np.savez(tmp / "index.npz", vocab=idx.vocab, term_ptr=idx.term_ptr,
                 post_doc=idx.post_doc, post_tf=idx.post_tf, doc_len=idx.doc_len,
                 doc_kind=idx.doc_kind)
        (tmp / "docs.json").write_text(json.dumps(idx.docs, default=str), encoding="utf-8")
        # meta last: a reader trusts the files only when meta matches them
        (tmp / "meta.json").write_text(json.dumps(idx.meta, default=str), encoding="utf-8")
        for name in ("index.npz", "docs.json", "meta.json"):
            os.replace(tmp / name, d / name)
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


_MEMO: dict[str, ContextIndex] = {}


def load_index(passport_dir: str | Path, *, rebuild: bool = False,
               investigations: str | Path | None = None) -> tuple[ContextIndex, bool]:
    """The passport's index, from memory, the cache folder, or built now.

    Returns ``(index, built)``; ``built`` is True when it was (re)built now.
    """
    directory = Path(passport_dir).resolve()
    if not (directory / "passport.yaml").is_file():
        from ..errors import PassportError

        raise PassportError("is not a passport folder (no passport.yaml)", file=str(directory))
    fp = _full_fingerprint(directory, investigations)
    if not rebuild:
        mem = _MEMO.get(str(directory))
        if mem is not None and fingerprint_matches(directory, mem.meta.get("fingerprint"), fp):
            return mem, False
        d = cache_dir(directory)
        try:
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            if meta.get("version") == INDEX_VERSION and \
                    fingerprint_matches(directory, meta.get("fingerprint"), fp):
                with np.load(d / "index.npz", allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                docs = json.loads((d / "docs.json").read_text(encoding="utf-8"))
                if len(docs) == len(arrays["doc_len"]):
                    idx = ContextIndex(directory=directory, docs=docs, meta=meta, **arrays)
                    _MEMO[str(directory)] = idx
                    return idx, False
        except (OSError, ValueError, KeyError):
            pass  # no cache yet, or a stale or half-written one: rebuild
    return build_index(directory, investigations=investigations), True


def index_stats(idx: ContextIndex) -> dict[str, Any]:
    return {"documents": idx.meta.get("documents"), "terms": int(len(idx.vocab)),
            "built_at": idx.meta.get("built_at"), "build_seconds": idx.meta.get("build_seconds")}
