"""Memory: an index of past investigations, similar ones, and reusable patterns.

The index is a DuckDB file (default ``<library>/memory.duckdb``) with three
tables:

``investigations``
    one row per investigation, its latest state: metric, direction, verdict,
    onset, top cause, status (``open`` or ``resolved``) and resolution.
``tokens``
    an inverted index ``(investigation_id, field, token, tf)`` over the fields
    ``metric``, ``slice`` (``dim=value`` pairs and their parts), ``kind``,
    ``target`` and ``text`` (messages, notes, evidence), tokenized by the
    workbench's one tokenizer (:mod:`workbench.textsearch`, stop words left
    out). DuckDB's ``fts`` extension is downloaded at ``INSTALL`` time, which
    fails offline, so the workbench builds this table itself; free text is
    ranked by the same BM25 as every other search of the workbench
    (:func:`workbench.textsearch.bm25`; Robertson and Zaragoza, "The
    Probabilistic Relevance Framework: BM25 and Beyond", 2009), an
    investigation being one document.
``patterns``
    one row per confirmed cause of a resolved investigation: the change's
    kind, target and scope, the metric and direction, the slice and how it was
    resolved. :func:`prior_evidence` turns them into prior log-odds for a
    candidate change of a new investigation ("flag flip scoped to one
    platform -> conversion drop on that platform; resolution: revert").

The index is derived data: :func:`rebuild_memory` recreates it from the
library folders, and a save that finds it locked by another process marks it
stale so that the next writer rebuilds it.

Examples
--------
>>> from workbench.investigation.library.memory import memory_path, search_investigations
>>> hits = search_investigations(memory_path("investigations"), "checkout ios")  # doctest: +SKIP
>>> print(hits.summary())                                                       # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...errors import UsageError
from ...textsearch import STOP_WORDS, bm25, query_groups, tokenize

__all__ = ["MEMORY_FILE", "STALE_MARK", "MemoryHit", "MemoryLocked", "MemorySearch",
           "SimilarInvestigation", "describe_pattern", "index_investigation", "load_records",
           "memory_path", "prior_evidence", "rebuild_memory", "record_tokens",
           "search_investigations", "similar_investigations"]

MEMORY_FILE = "memory.duckdb"
STALE_MARK = ".memory-stale"

SCHEMA = """
CREATE TABLE IF NOT EXISTS investigations (
    investigation_id VARCHAR PRIMARY KEY, passport VARCHAR, metric VARCHAR, verdict VARCHAR,
    onset VARCHAR, direction VARCHAR, relative_change DOUBLE, latest_version INTEGER,
    created_at VARCHAR, updated_at VARCHAR, status VARCHAR, resolution VARCHAR,
    resolved_at VARCHAR, top_change_id VARCHAR, top_kind VARCHAR, top_target VARCHAR,
    top_confidence DOUBLE, record VARCHAR);
CREATE TABLE IF NOT EXISTS tokens (
    investigation_id VARCHAR, field VARCHAR, token VARCHAR, tf INTEGER);
CREATE TABLE IF NOT EXISTS patterns (
    investigation_id VARCHAR, passport VARCHAR, onset VARCHAR, metric VARCHAR,
    direction VARCHAR, change_id VARCHAR, kind VARCHAR, target VARCHAR, scope VARCHAR,
    scope_dims VARCHAR, slice VARCHAR, status VARCHAR, resolution VARCHAR,
    decided_at VARCHAR, note VARCHAR);
"""


class MemoryLocked(Exception):
    """The memory file is held by another process (internal: callers mark it stale)."""


def memory_path(root: str | Path) -> Path:
    """The memory index of an investigations library."""
    return Path(root) / MEMORY_FILE


# --------------------------------------------------------------------------- tokens
def _tokens(text) -> list[str]:
    """The one tokenizer (:func:`workbench.textsearch.tokenize`), stop words left out."""
    return tokenize(text, stop=True)


def _slice_tokens(filt: dict) -> list[str]:
    toks = []
    for d, v in (filt or {}).items():
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            toks.append(f"{str(d).lower()}={str(x).lower()}")
            toks.append(str(d).lower())
            toks.append(str(x).lower())
    return toks


def record_tokens(rec: dict) -> dict[str, list[str]]:
    """The tokens of one memory record, by field."""
    slices = [s for s in rec.get("slices", [])][:3]
    causes = rec.get("causes", [])[:3] + rec.get("confirmed", [])
    fields = {
        "metric": [str(rec.get("metric", "")).lower()] + _tokens(rec.get("metric", "")),
        "slice": [t for s in slices for t in _slice_tokens(s)]
                 + [t for c in rec.get("confirmed", []) for t in _slice_tokens(c.get("scope"))],
        "kind": [str(c.get("kind", "")).lower() for c in causes if c.get("kind")],
        "target": [t for c in causes for t in ([str(c.get("target", "")).lower()]
                                               + _tokens(c.get("target", "")))
                   if t] + [str(c.get("change_id", "")).lower() for c in causes],
        "text": _tokens(rec.get("text", "")) + _tokens(rec.get("verdict", ""))
                + _tokens(rec.get("resolution") or "") + _tokens(rec.get("passport", "")),
    }
    return {k: [t for t in v if t] for k, v in fields.items()}


# --------------------------------------------------------------------------- connections
def _connect(path: Path, *, read_only: bool, attempts: int = 25):
    import duckdb

    last: Exception | None = None
    for i in range(attempts):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if not read_only:
                con.execute(SCHEMA)
            return con
        except duckdb.Error as exc:
            msg = str(exc).lower()
            if "lock" not in msg and "different configuration" not in msg:
                raise
            last = exc
            time.sleep(0.04 * (i + 1))
    raise MemoryLocked(str(last).splitlines()[0] if last else "locked")


def index_investigation(memory_db: str | Path, rec: dict) -> None:
    """Insert or replace one investigation's row, tokens and patterns.

    Parameters
    ----------
    memory_db:
        The index file (created if missing).
    rec:
        The record built by :func:`workbench.investigation.library.records.memory_record`.
    """
    path = Path(memory_db)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only=False)
    try:
        con.execute("BEGIN")
        _write_record(con, rec)
        con.execute("COMMIT")
    finally:
        con.close()
    _PATTERN_CACHE.clear()


def rebuild_memory(root: str | Path, records: Iterable[dict],
                   memory_db: str | Path | None = None) -> int:
    """Recreate the index from ``records`` (one per investigation of the library at ``root``;
    :func:`workbench.investigation.library.records.rebuild_memory` reads them); returns the number
    indexed."""
    path = Path(memory_db) if memory_db is not None else memory_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only=False)
    n = 0
    try:
        con.execute("BEGIN")
        for t in ("investigations", "tokens", "patterns"):
            con.execute(f"DELETE FROM {t}")
        for rec in records:
            _write_record(con, rec)
            n += 1
        con.execute("COMMIT")
    finally:
        con.close()
    stale = Path(root) / STALE_MARK
    if stale.exists():
        stale.unlink()
    _PATTERN_CACHE.clear()
    return n


def _write_record(con, rec: dict) -> None:
    iid = rec["investigation_id"]
    for t in ("investigations", "tokens", "patterns"):
        con.execute(f"DELETE FROM {t} WHERE investigation_id = ?", [iid])
    top = (rec.get("causes") or [{}])[0]
    con.execute("INSERT INTO investigations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)",
                [iid, rec.get("passport"), rec.get("metric"), rec.get("verdict"),
                 rec.get("onset"), rec.get("direction"), rec.get("relative_change"),
                 rec.get("latest_version"), rec.get("created_at"), rec.get("updated_at"),
                 rec.get("status"), rec.get("resolution"), rec.get("resolved_at"),
                 top.get("change_id"), top.get("kind"), top.get("target"),
                 top.get("confidence"), json.dumps(rec, sort_keys=True, default=str)])
    rows = []
    for fld, toks in record_tokens(rec).items():
        counts: dict[str, int] = {}
        for t in toks:
            counts[t] = counts.get(t, 0) + 1
        rows.extend([iid, fld, t, c] for t, c in counts.items())
    if rows:
        con.executemany("INSERT INTO tokens VALUES (?, ?, ?, ?)", rows)
    top_slice = _top_filter(rec.get("slices", []))
    pats = []
    for c in rec.get("decided", []):
        scope = c.get("scope") or {}
        pats.append([iid, rec.get("passport"), rec.get("onset"), rec.get("metric"),
                     rec.get("direction"), c.get("change_id"), c.get("kind"), c.get("target"),
                     json.dumps(scope, sort_keys=True), ",".join(sorted(scope)),
                     json.dumps(top_slice, sort_keys=True), c.get("status"),
                     rec.get("resolution"), c.get("decided_at"), c.get("note")])
    if pats:
        con.executemany("INSERT INTO patterns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        pats)


def _top_filter(slices: list) -> dict:
    for s in slices or []:
        f = s.get("filter") if isinstance(s, dict) and "filter" in s else s
        if f:
            return dict(f)
    return {}


# --------------------------------------------------------------------------- search
@dataclass(frozen=True)
class MemoryHit:
    """One past investigation found by :func:`search_investigations`."""

    investigation_id: str
    score: float
    metric: str
    verdict: str
    onset: str | None
    status: str
    resolution: str | None
    top_cause: str | None
    top_target: str | None
    matched: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["matched"] = list(self.matched)
        return d

    def line(self) -> str:
        res = f"resolved: {self.resolution}" if self.status == "resolved" else self.status
        return (f"{self.investigation_id}  {self.metric} {self.verdict} onset {self.onset or '-'}"
                f"  top {self.top_cause or '-'} {self.top_target or ''}  ({res})")


@dataclass(frozen=True)
class MemorySearch:
    """The result of :func:`search_investigations`: hits, best first."""

    query: dict
    hits: tuple[MemoryHit, ...]

    def to_dict(self) -> dict:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits]}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([h.to_dict() for h in self.hits])

    def summary(self) -> str:
        if not self.hits:
            return "no past investigation matches"
        return "\n".join(h.line() for h in self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)


def _parse_slice(sl) -> list[str]:
    if sl is None:
        return []
    if isinstance(sl, dict):
        return [f"{str(k).lower()}={str(v).lower()}" for k, v in sl.items()]
    items = [sl] if isinstance(sl, str) else list(sl)
    out = []
    for it in items:
        for part in str(it).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise UsageError(f"slice {part!r}: expected DIMENSION=VALUE, e.g. platform=ios")
            k, v = part.split("=", 1)
            out.append(f"{k.strip().lower()}={v.strip().lower()}")
    return out


def search_investigations(memory_db: str | Path, text: str | None = None, *,
                          metric: str | None = None, slice=None, kind: str | None = None,
                          target: str | None = None, status: str | None = None,
                          limit: int = 10) -> MemorySearch:
    """Find past investigations by metric, slice, change kind, target and free text.

    Parameters
    ----------
    memory_db:
        The index (:func:`memory_path` of a library).
    text:
        Free text; ranked by BM25 over every indexed field. Without it,
        hits are the most recently updated matches.
    metric:
        Exact metric name.
    slice:
        ``"platform=ios"``, ``"platform=ios,app_version=5.2"``, a list of such,
        or a dict; every pair must be among the investigation's top slices or
        the scope of its confirmed cause.
    kind, target:
        A change kind (``flag``) or target (``new_checkout_flow``, or a word
        of it such as ``checkout``) among its top or confirmed causes.
    status:
        ``open`` or ``resolved``.

    Returns
    -------
    MemorySearch
    """
    if status is not None and status not in ("open", "resolved"):
        raise UsageError(f"status {status!r}: expected open or resolved")
    q = {"text": text, "metric": metric, "slice": slice, "kind": kind, "target": target,
         "status": status}
    path = Path(memory_db)
    where, params = ["TRUE"], []
    if metric:
        where.append("i.metric = ?")
        params.append(metric)
    if status:
        where.append("i.status = ?")
        params.append(status)
    for tok in _parse_slice(slice):
        where.append("EXISTS (SELECT 1 FROM tokens t WHERE t.investigation_id = "
                     "i.investigation_id AND t.field = 'slice' AND t.token = ?)")
        params.append(tok)
    for fld, val in (("kind", kind), ("target", target)):
        if val:
            where.append("EXISTS (SELECT 1 FROM tokens t WHERE t.investigation_id = "
                         "i.investigation_id AND t.field = ? AND t.token = ?)")
            params += [fld, str(val).lower()]
    groups = [g for g in ([x for x in grp if x not in STOP_WORDS]
                          for grp in query_groups(text)) if g] if text else []
    if text and not groups:
        raise UsageError(f"search text {text!r} has no searchable words")
    if not path.is_file():
        return MemorySearch(q, ())
    try:
        con = _connect(path, read_only=True)
    except MemoryLocked:
        time.sleep(0.2)
        con = _connect(path, read_only=True)
    cols = ("i.investigation_id, 1.0, i.metric, i.verdict, i.onset, i.status, i.resolution, "
            "i.top_change_id, i.top_target, []::VARCHAR[]")
    try:
        if groups:
            rows = _ranked(con, groups, cols, where, params, int(limit))
        else:
            rows = con.execute(f"SELECT {cols} FROM investigations i WHERE "
                               f"{' AND '.join(where)} ORDER BY i.updated_at DESC LIMIT ?",
                               params + [int(limit)]).fetchall()
    finally:
        con.close()
    hits = tuple(MemoryHit(investigation_id=r[0], score=round(float(r[1]), 4), metric=r[2],
                           verdict=r[3], onset=r[4], status=r[5], resolution=r[6],
                           top_cause=r[7], top_target=r[8], matched=tuple(r[9] or ()))
                 for r in rows)
    return MemorySearch(q, hits)


def _ranked(con, groups: list[list[str]], cols: str, where: list[str], params: list,
            limit: int) -> list[tuple]:
    """Rows of the investigations matching ``where``, ranked by BM25 over their tokens
    (:func:`workbench.textsearch.bm25`; a document is an investigation, all fields)."""
    docs = con.execute("SELECT i.investigation_id, i.updated_at, coalesce(sum(t.tf), 0) "
                       "FROM investigations i LEFT JOIN tokens t USING (investigation_id) "
                       "GROUP BY ALL ORDER BY 1").df()
    toks = sorted({x for g in groups for x in g})
    post = con.execute("SELECT investigation_id, token, sum(tf)::DOUBLE AS tf FROM tokens "
                       "WHERE token IN (SELECT unnest(?)) GROUP BY ALL", [toks]).df()
    doc_of = docs.iloc[:, 0].astype(str)
    post["doc"] = doc_of.searchsorted(post["investigation_id"])
    by_tok = {tok: post[post["token"] == tok] for tok in toks}
    score, hit = bm25([[(by_tok[x]["doc"].to_numpy(), by_tok[x]["tf"].to_numpy(), 1.0)
                        for x in g] for g in groups], docs.iloc[:, 2].to_numpy())
    allowed = {r[0] for r in con.execute(
        f"SELECT i.investigation_id FROM investigations i WHERE {' AND '.join(where)}",
        params).fetchall()}
    keep = np.flatnonzero((score > 0) & doc_of.isin(allowed).to_numpy())
    updated = docs.iloc[:, 1].astype(str).to_numpy()
    order = keep[np.lexsort((_desc(updated[keep]), -score[keep], -hit[:, keep].sum(axis=0)))]
    order = order[:limit]
    if not len(order):
        return []
    info = {r[0]: r for r in con.execute(
        f"SELECT {cols} FROM investigations i WHERE i.investigation_id IN (SELECT unnest(?))",
        [list(doc_of.iloc[order])]).fetchall()}
    out = []
    for d in order:  # at most ``limit`` hits
        iid = doc_of.iat[d]
        matched = sorted(post.loc[post["doc"] == d, "token"])
        out.append((iid, float(score[d]), *info[iid][2:9], matched))
    return out


def _desc(values) -> np.ndarray:
    """Sort keys that order ``values`` (strings) descending in an ascending sort."""
    return -np.unique(values, return_inverse=True)[1]


def load_records(memory_db: str | Path) -> list[dict]:
    """Every indexed record (the latest state of each investigation)."""
    path = Path(memory_db)
    if not path.is_file():
        return []
    try:
        con = _connect(path, read_only=True)
    except MemoryLocked:
        return []
    try:
        rows = con.execute("SELECT record FROM investigations").fetchall()
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]


# --------------------------------------------------------------------------- similar
@dataclass(frozen=True)
class SimilarInvestigation:
    """A past investigation that looks like the current one, and how it ended."""

    investigation_id: str
    score: float
    reasons: tuple[str, ...]
    metric: str
    direction: str | None
    onset: str | None
    verdict: str
    status: str
    resolution: str | None
    slice: dict = field(default_factory=dict)
    cause: dict | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["reasons"] = list(self.reasons)
        return d

    def line(self) -> str:
        """One line: ``similar to inv-... of 2026-11-18 (sessions drop on platform=ios; ...)``."""
        when = (self.onset or "")[:10] or "an earlier date"
        where = ", ".join(f"{k}={v}" for k, v in self.slice.items()) or "everywhere"
        what = f"{self.metric} {self.direction or 'change'} on {where}"
        res = f"resolved: {self.resolution}" if self.status == "resolved" else "still open"
        return (f"similar to {self.investigation_id} of {when} ({what}; {res}): "
                + "; ".join(self.reasons))


def _view(obj: Any) -> dict:
    """Metric, direction, slices, causes, passport, onset of an Investigation or answer dict."""
    if isinstance(obj, dict):
        d = obj
        get = d.get
    else:
        get = lambda k, default=None: getattr(obj, k, default)  # noqa: E731
    div = get("divergence") or {}
    rc = div.get("relative_change")
    direction = get("direction") or (None if rc is None else ("drop" if rc < 0 else "rise"))
    slices = [s.get("filter", s) if isinstance(s, dict) else s for s in (get("slices") or [])]
    return {"metric": get("metric"), "direction": direction, "slices": slices,
            "causes": list(get("causes") or []), "passport": get("passport"),
            "onset": div.get("onset") or get("onset"),
            "investigation_id": get("investigation_id")}


def similar_investigations(memory_db: str | Path, current, *, limit: int = 3,
                           min_score: float = 4.0,
                           exclude: str | None = None) -> tuple[SimilarInvestigation, ...]:
    """Past investigations similar to ``current``, resolved ones first among equals.

    Similarity adds up: the same metric (2) moving the same way (1); top
    slices on the same dimensions (2 x Jaccard) and with the same values (1
    per pair, at most 2); a change target among the current top three causes
    that was the confirmed cause there (3) or only a candidate (1.5); the same
    kind of top cause (0.5); a resolution to learn from (0.5). Hits need
    ``min_score`` (4): the same metric moving the same way (3) is common and
    is not enough without something shared about where or why.

    Parameters
    ----------
    memory_db:
        The index.
    current:
        An :class:`~workbench.investigation.Investigation` or its answer dict.
    exclude:
        An investigation id to leave out (the current one, once saved). The
        same incident (same passport, metric and onset) is always left out.
    """
    cur = _view(current)
    exclude = exclude or cur.get("investigation_id")
    cur_filter = _top_filter(cur["slices"])
    cur_dims = set(cur_filter)
    cur_pairs = {(k, str(v)) for k, v in cur_filter.items()}
    cur_targets = {str(c.get("target")) for c in cur["causes"][:3] if c.get("target")}
    cur_kinds = {str(c.get("kind")) for c in cur["causes"][:1] if c.get("kind")}
    out = []
    for rec in load_records(memory_db):
        if rec["investigation_id"] == exclude:
            continue
        if (rec.get("passport"), rec.get("metric"), rec.get("onset")) == \
                (cur["passport"], cur["metric"], cur["onset"]) and cur["onset"] is not None:
            continue
        score, reasons = 0.0, []
        if rec.get("metric") == cur["metric"]:
            score += 2
            if cur["direction"] and rec.get("direction") == cur["direction"]:
                score += 1
                reasons.append(f"{cur['metric']} {cur['direction']} too")
            else:
                reasons.append(f"same metric {cur['metric']}")
        past_filter = _top_filter(rec.get("slices", []))
        past_dims = set(past_filter)
        if cur_dims and past_dims and cur_dims & past_dims:
            jac = len(cur_dims & past_dims) / len(cur_dims | past_dims)
            score += 2 * jac
            same = cur_pairs & {(k, str(v)) for k, v in past_filter.items()}
            score += min(len(same), 2)
            if same:
                reasons.append("same slice " + ", ".join(f"{k}={v}" for k, v in sorted(same)))
            else:
                reasons.append("slice on " + ", ".join(sorted(cur_dims & past_dims))
                               + " (" + ", ".join(f"{k}={past_filter[k]}" for k in
                                                  sorted(cur_dims & past_dims)) + " there)")
        past_causes = (rec.get("confirmed") or []) + (rec.get("causes") or [])[:3]
        past_targets = {str(c.get("target")) for c in past_causes if c.get("target")}
        shared = cur_targets & past_targets
        if shared:
            confirmed_t = {str(c.get("target")) for c in rec.get("confirmed") or []}
            order = [str(c.get("target")) for c in cur["causes"][:3]]
            hit = sorted(shared, key=lambda t: (t not in confirmed_t, order.index(t)
                                                if t in order else 99))[0]
            if hit in confirmed_t:
                score += 3
                reasons.append(f"{hit} was the confirmed cause there")
            else:
                score += 1.5
                reasons.append(f"{hit} was a candidate there")
        past_kinds = {str(c.get("kind")) for c in past_causes[:1] if c.get("kind")}
        if cur_kinds & past_kinds:
            score += 0.5
        if rec.get("status") == "resolved":
            score += 0.5
        if score < min_score:
            continue
        cause = (rec.get("confirmed") or [None])[0] or ((rec.get("causes") or [None])[0])
        out.append(SimilarInvestigation(
            investigation_id=rec["investigation_id"], score=round(score, 3),
            reasons=tuple(reasons), metric=rec.get("metric"), direction=rec.get("direction"),
            onset=rec.get("onset"), verdict=rec.get("verdict"), status=rec.get("status", "open"),
            resolution=rec.get("resolution"), slice=past_filter,
            cause=None if cause is None else {k: cause.get(k) for k in
                                              ("change_id", "kind", "target", "scope")}))
    out.sort(key=lambda s: s.onset or "", reverse=True)  # most recent first among equals
    out.sort(key=lambda s: (-s.score, s.status != "resolved"))
    return tuple(out[:limit])


# --------------------------------------------------------------------------- prior evidence
_PATTERN_CACHE: dict[tuple, list[dict]] = {}


def _load_patterns(memory_db: str | Path) -> list[dict]:
    path = Path(memory_db)
    try:
        st = path.stat()
    except OSError:
        return []
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    hit = _PATTERN_CACHE.get(key)
    if hit is not None:
        return hit
    try:
        con = _connect(path, read_only=True, attempts=3)
    except MemoryLocked:
        return []
    try:
        cols = [c[0] for c in con.execute("SELECT * FROM patterns LIMIT 0").description]
        rows = con.execute("SELECT * FROM patterns").fetchall()
    except Exception:  # an index from before patterns existed: no priors
        rows, cols = [], []
    finally:
        con.close()
    pats = []
    for r in rows:
        d = dict(zip(cols, r))
        d["scope"] = json.loads(d["scope"] or "{}")
        d["slice"] = json.loads(d["slice"] or "{}")
        pats.append(d)
    _PATTERN_CACHE.clear()
    _PATTERN_CACHE[key] = pats
    return pats


def _cand(candidate, *names):
    for n in names:
        if isinstance(candidate, dict):
            if n in candidate:
                return candidate[n]
        elif hasattr(candidate, n):
            return getattr(candidate, n)
    return None


def _scope_matches_slice(scope: dict, filt: dict) -> bool:
    """The scope names at least one dimension of the slice, with the slice's value."""
    shared = set(scope) & set(filt)
    if not shared:
        return False
    for d in shared:
        vals = scope[d] if isinstance(scope[d], list) else [scope[d]]
        if str(filt[d]) not in [str(v) for v in vals]:
            return False
    return True


def describe_pattern(kind: str, scope_dims: list[str], metric: str, direction: str | None,
                     resolution: str | None) -> str:
    """``flag change scoped to platform -> sessions drop on that platform; resolution: X``."""
    where = ", ".join(scope_dims)
    move = direction or "change"
    head = (f"{kind} change scoped to {where} -> {metric} {move} on that {where}" if where
            else f"{kind} change everywhere -> {metric} {move} everywhere")
    return head + (f"; resolution: {resolution}" if resolution else "")


def prior_evidence(memory_db: str | Path | None, *, metric: str, slices: list, candidate,
                   direction: str | None = None, passport: str | None = None,
                   onset: str | None = None, asof: str | None = None,
                   ) -> tuple[float, str | None]:
    """Prior log-odds for a candidate change, learned from resolved investigations.

    Added to the candidate's log-likelihood ratio in the ranking, and shown as
    evidence, so a reader sees that part of the confidence comes from the past
    and not from this data. The boosts are deliberately small against the
    data's weights (alignment 3, scope 4, effect 2.5; external 3.5): a prior
    can break a near tie, it cannot blame a change the data does not point at.

    - **Same target confirmed before** (same change kind and metric): +1.0,
      +0.25 per further confirmation, at most +1.5.
    - **Pattern** (no target match): a change of the same kind, scoped on the
      dimensions of this divergence's top slice with its values, confirmed as
      the cause of the same metric moving the same way in that slice: +0.4,
      +0.1 per further investigation, at most +0.7.
    - **Refuted before** and never confirmed: -0.25.

    Parameters
    ----------
    memory_db:
        The memory index; None or a missing file gives ``(0.0, None)``.
    metric:
        The metric investigated.
    slices:
        The localized slices (dicts with ``filter``, ``baseline``, ``observed``),
        most explanatory first.
    candidate:
        The change: a dict or an object with ``id``/``change_id``, ``kind``,
        ``target`` and ``scope`` (a change-log row or a ``CandidateCause``).
    direction:
        ``drop`` or ``rise``; default from the top slice's baseline/observed.
    passport, onset:
        The current incident: patterns learned from the same passport, metric
        and onset (a re-run of the same investigation) are ignored, so an
        investigation cannot confirm itself.
    asof:
        ISO time; only decisions made before it count. A saved notebook passes
        its save time so that re-running it reproduces its ranking.

    Returns
    -------
    (log_boost, evidence)
        ``evidence`` is one line for the cause's evidence list, or None.

    Examples
    --------
    >>> prior_evidence(None, metric="conversion_rate", slices=[],
    ...                candidate={"kind": "flag", "target": "x", "scope": {}})
    (0.0, None)
    """
    if memory_db is None:
        return 0.0, None
    pats = _load_patterns(memory_db)
    if not pats:
        return 0.0, None
    kind = str(_cand(candidate, "kind") or "")
    target = str(_cand(candidate, "target") or "")
    scope = _cand(candidate, "scope") or {}
    if not isinstance(scope, dict):
        scope = {}
    filt = _top_filter(slices)
    if direction is None:
        direction = _slice_direction(slices)
    usable = [p for p in pats if p["metric"] == metric
              and (asof is None or (p.get("decided_at") or "") <= asof)
              and not (passport is not None and onset is not None
                       and p.get("passport") == passport and p.get("onset") == onset)]
    confirmed = [p for p in usable if p["status"] == "confirmed"]
    same_target = [p for p in confirmed if p["target"] == target and p["kind"] == kind
                   and (direction is None or p.get("direction") in (None, direction))]
    if same_target:
        boost = min(1.0 + 0.25 * (len(same_target) - 1), 1.5)
        p = same_target[-1]
        where = ", ".join(f"{k}={v}" for k, v in p["slice"].items()) or "everywhere"
        ev = (f"prior (past investigations, not this data): {kind} {target} was the confirmed "
              f"cause of a {metric} {p.get('direction') or 'change'} on {where} in "
              f"{p['investigation_id']} ({(p.get('onset') or '')[:10]}"
              + (f"; resolution: {p['resolution']}" if p.get("resolution") else "")
              + f"){'' if len(same_target) == 1 else f' and {len(same_target) - 1} more'}"
              f"; log-odds +{boost:.2f}")
        return round(boost, 4), ev
    if filt and scope and _scope_matches_slice(scope, filt):
        matches = [p for p in confirmed if p["kind"] == kind and p["scope"]
                   and (direction is None or p.get("direction") in (None, direction))
                   and set(p["scope"]) & set(filt)
                   and _scope_matches_slice(p["scope"], p["slice"] or p["scope"])]
        if matches:
            ids = sorted({p["investigation_id"] for p in matches})
            boost = min(0.4 + 0.1 * (len(ids) - 1), 0.7)
            dims = sorted(set(scope) & set(filt))
            res = matches[-1].get("resolution")
            ev = (f"prior pattern from {len(ids)} resolved investigation"
                  f"{'s' if len(ids) > 1 else ''} ({', '.join(ids[:3])}): "
                  + describe_pattern(kind, dims, metric, direction, res)
                  + f"; log-odds +{boost:.2f}")
            return round(boost, 4), ev
    if not (filt and scope) and not scope:
        matches = [p for p in confirmed if p["kind"] == kind and not p["scope"] and not filt
                   and not p["slice"]
                   and (direction is None or p.get("direction") in (None, direction))]
        if matches:
            ids = sorted({p["investigation_id"] for p in matches})
            boost = min(0.4 + 0.1 * (len(ids) - 1), 0.7)
            ev = (f"prior pattern from {len(ids)} resolved investigation"
                  f"{'s' if len(ids) > 1 else ''} ({', '.join(ids[:3])}): "
                  + describe_pattern(kind, [], metric, direction, matches[-1].get("resolution"))
                  + f"; log-odds +{boost:.2f}")
            return round(boost, 4), ev
    refuted = [p for p in usable if p["status"] == "refuted" and p["target"] == target
               and p["kind"] == kind]
    ever_confirmed = any(p["target"] == target and p["kind"] == kind for p in confirmed)
    if refuted and not ever_confirmed:
        p = refuted[-1]
        ev = (f"prior (past investigations, not this data): {kind} {target} was refuted as the "
              f"cause of a {metric} {p.get('direction') or 'change'} in {p['investigation_id']}"
              + (f" ({p['note']})" if p.get("note") else "") + "; log-odds -0.25")
        return -0.25, ev
    return 0.0, None


def _slice_direction(slices: list) -> str | None:
    for s in slices or []:
        if isinstance(s, dict) and s.get("filter") and s.get("baseline") is not None \
                and s.get("observed") is not None:
            b, o = s["baseline"], s["observed"]
            if isinstance(b, (int, float)) and isinstance(o, (int, float)) and \
                    math.isfinite(b) and math.isfinite(o) and b != o:
                return "drop" if o < b else "rise"
    return None
