"""Ranked search over a passport's context: BM25 over the token index.

The tokens and the ranking are the workbench's one text search
(:mod:`workbench.textsearch`: Okapi BM25, Robertson and Zaragoza, "The
Probabilistic Relevance Framework: BM25 and Beyond", 2009). A query is a list
of words; a word's tokens all score, and a word with no exact token in the
vocabulary matches the terms it prefixes (``check`` -> ``checkout``) at half
weight. Scores are multiplied by the share of query words a document matches,
so a change that mentions both ``checkout`` and ``ios`` ranks above one that
mentions ``checkout`` three times.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..textsearch import bm25, query_groups
from .index import KINDS, ContextIndex, load_index

MAX_PREFIX_TERMS = 64


@dataclass(frozen=True)
class SearchHit:
    """One matching document."""

    kind: str
    id: str
    title: str
    text: str
    score: float
    ts: str | None = None
    matched: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "title": self.title, "text": self.text,
                "score": round(self.score, 4), "ts": self.ts, "matched": list(self.matched),
                "fields": self.fields}


@dataclass(frozen=True)
class SearchResult:
    """Ranked hits of a query, with how long it took and whether the index was built."""

    query: str
    hits: tuple[SearchHit, ...]
    took_ms: float
    built_index: bool
    documents: int

    def to_dict(self) -> dict:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits],
                "took_ms": round(self.took_ms, 2), "built_index": self.built_index,
                "documents": self.documents}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([h.to_dict() for h in self.hits],
                            columns=["kind", "id", "title", "text", "score", "ts", "matched",
                                     "fields"])

    def summary(self) -> str:
        lines = [f"{len(self.hits)} result(s) for {self.query!r} in {self.took_ms:.0f} ms"
                 + (" (index built now)" if self.built_index else "")]
        for h in self.hits:
            when = f" {h.ts[:16].replace('T', ' ')}" if h.ts else ""
            lines.append(f"  {h.score:6.2f}  {h.kind:13s} {h.id}{when}")
            lines.append(f"          {h.title}")
            if h.text:
                lines.append(f"          {h.text[:160]}")
        return "\n".join(lines)


def _term_ids(idx: ContextIndex, token: str) -> list[tuple[int, float]]:
    vocab = idx.vocab
    if len(vocab) == 0:
        return []
    i = int(np.searchsorted(vocab, token))
    if i < len(vocab) and vocab[i] == token:
        return [(i, 1.0)]
    if len(token) < 3:
        return []
    j = int(np.searchsorted(vocab, token + "\U0010ffff"))
    return [(k, 0.5) for k in range(i, min(j, i + MAX_PREFIX_TERMS))]


def rank(idx: ContextIndex, query: str, *, kinds=None, limit: int = 20
         ) -> list[tuple[int, float, list[str]]]:
    """``[(doc, score, matched words)]`` best first (:func:`workbench.textsearch.bm25`)."""
    groups = query_groups(query)
    if not groups or idx.n_docs == 0:
        return []
    postings = [[(idx.post_doc[idx.term_ptr[t]:idx.term_ptr[t + 1]],
                  idx.post_tf[idx.term_ptr[t]:idx.term_ptr[t + 1]], w)
                 for tok in toks for t, w in _term_ids(idx, tok)] for toks in groups]
    score, words_hit = bm25(postings, idx.doc_len)
    if kinds:
        wanted = np.isin(idx.doc_kind, [KINDS.index(k) for k in kinds])
        score[~wanted] = 0.0
    cand = np.flatnonzero(score > 0)
    if len(cand) == 0:
        return []
    top = cand[np.argsort(-score[cand], kind="stable")][:limit]
    words = [" ".join(g[:1]) for g in groups]
    return [(int(d), float(score[d]), [words[g] for g in range(len(groups)) if words_hit[g, d]])
            for d in top]


def search(passport_dir: str | Path, query: str, *, kinds=None, limit: int = 20,
           rebuild: bool = False, investigations: str | Path | None = None) -> SearchResult:
    """Search a passport's changes, slices, log lines and past investigations.

    Parameters
    ----------
    passport_dir:
        A passport folder. Its index is built on first use and cached in
        ``PASSPORT/.workbench/context/``; later searches load it (or reuse it in
        memory) and take milliseconds.
    query:
        Words, e.g. ``"checkout ios"``; case and punctuation do not matter.
    kinds:
        Only these kinds of documents: ``change``, ``slice``, ``log``,
        ``investigation``.
    limit:
        At most this many hits.
    rebuild:
        Rebuild the index even if the cached one is current.
    investigations:
        An investigations library (its ``memory.duckdb``) whose past
        investigations of this passport are searched too; the passport's own
        ``investigations/`` is searched without it.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> from workbench.context import search
    >>> res = search("sample_data/demo", "checkout ios")           # doctest: +SKIP
    >>> res.hits[0].kind, res.hits[0].id                           # doctest: +SKIP
    ('change', 'chg-...')
    """
    from ..errors import UsageError

    t0 = time.perf_counter()
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise UsageError(f"unknown kind(s) {bad}; kinds are: {', '.join(KINDS)}")
    if not isinstance(limit, int) or limit < 1:
        raise UsageError(f"limit must be a positive integer; got {limit!r}")
    idx, built = load_index(passport_dir, rebuild=rebuild, investigations=investigations)
    ranked = rank(idx, query, kinds=kinds, limit=limit)
    hits = []
    for d, s, words in ranked:
        doc = idx.docs[d]
        hits.append(SearchHit(kind=doc["kind"], id=doc["id"], title=doc["title"],
                              text=doc.get("text") or "", score=s, ts=doc.get("ts"),
                              matched=tuple(words), fields=doc.get("fields") or {}))
    return SearchResult(query=query, hits=tuple(hits), took_ms=(time.perf_counter() - t0) * 1e3,
                        built_index=built, documents=idx.n_docs)
