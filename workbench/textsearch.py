"""The one text search of the workbench: one tokenizer, one ranking, one matcher.

Used by the context index (``workbench search``, :mod:`workbench.context`), the
memory of past investigations (:func:`workbench.investigation.library.memory.
search_investigations`) and the search box of the served UI
(:meth:`workbench.ui.data.InvestigationData.search`).

Tokens
    Lower-case words, their compounds and camelCase parts: ``checkout-api``
    gives ``checkout-api``, ``checkout`` and ``api`` (``platform=ios``
    likewise: a slice is a compound); ``5.2`` gives ``5.2``,
    ``5`` and ``2``; ``PromoCodeValidator`` gives ``promocodevalidator``,
    ``promo``, ``code`` and ``validator`` (``iOS`` stays ``ios``). Indexes of
    free text may drop :data:`STOP_WORDS` (``stop=True``).
Ranking
    Okapi BM25 (Robertson and Zaragoza, "The Probabilistic Relevance
    Framework: BM25 and Beyond", 2009) with ``k1 = 1.2``, ``b = 0.75`` and idf
    ``log(1 + (N - df + 0.5) / (df + 0.5))``; a query word's tokens all score,
    and the score is multiplied by the share of query words a document
    matches, so a document that mentions both ``checkout`` and ``ios`` ranks
    above one that mentions ``checkout`` three times (:func:`bm25`).
Matching as you type
    :func:`contains_all`: the texts holding every query word (its whole form)
    as a substring, vectorized over a column of texts.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

__all__ = ["B", "K1", "STOP_WORDS", "bm25", "contains_all", "query_groups", "query_words",
           "tokenize", "word_tokens"]

K1, B = 1.2, 0.75
STOP_WORDS = frozenset("a an and are as at be by for from has in is it of on or that the this "
                       "to was were with after before than then".split())

_WORD = re.compile(r"[A-Za-z0-9]+(?:[._\-/:@=][A-Za-z0-9]+)*")
_SEP = re.compile(r"[._\-/:@=]")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_HUMP = re.compile(r"[a-z][A-Z]")  # camelCase only: v3 and 5xx stay whole


def word_tokens(word: str) -> list[str]:
    """Tokens of one word: the compound, its parts, and camelCase parts of each."""
    out = []
    low = word.lower()
    parts = [p for p in _SEP.split(word) if p]
    if len(parts) > 1:
        out.append(low)
    for p in parts:
        out.append(p.lower())
        camel = _CAMEL.findall(p) if _HUMP.search(p) else []
        if len(camel) > 1 and min(map(len, camel)) > 1:  # iOS stays ios, not i + os
            out += [c.lower() for c in camel]
    return out


def tokenize(text: str | None, *, stop: bool = False) -> list[str]:
    """All tokens of a text, in order, with repeats (term frequencies count them).

    Parameters
    ----------
    text:
        Any text (None is empty).
    stop:
        Leave out :data:`STOP_WORDS`.

    Examples
    --------
    >>> tokenize("Flag new_checkout_flow on iOS 5.2", stop=True)
    ['flag', 'new_checkout_flow', 'new', 'checkout', 'flow', 'ios', '5.2', '5', '2']
    """
    out: list[str] = []
    for w in _WORD.findall(str(text or "")):
        out += word_tokens(w)
    return [t for t in out if t not in STOP_WORDS] if stop else out


def query_groups(query: str | None) -> list[list[str]]:
    """The query as groups of tokens, one group per word (deduplicated); a group's
    first token is the whole word."""
    groups, seen = [], set()
    for w in _WORD.findall(str(query or "")):
        toks = list(dict.fromkeys(word_tokens(w)))
        key = tuple(toks)
        if toks and key not in seen:
            seen.add(key)
            groups.append(toks)
    return groups


def query_words(query: str | None) -> list[str]:
    """The whole words of a query, lower case (the first token of each group)."""
    return [g[0] for g in query_groups(query)]


def bm25(groups: Sequence[Iterable[tuple[np.ndarray, np.ndarray, float]]],
         doc_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BM25 scores of every document for a query given as postings.

    Parameters
    ----------
    groups:
        One entry per query word: the postings of each term the word matches,
        ``(documents, term frequencies, weight)`` (weight 1 for an exact term,
        less for a looser match such as a prefix).
    doc_len:
        The length (tokens) of every document; its size is the number of documents.

    Returns
    -------
    score, words_hit:
        ``score[d]`` (0: no match), multiplied by the share of query words
        document ``d`` matches; ``words_hit[g, d]`` whether word ``g`` matched it.
    """
    doc_len = np.asarray(doc_len, dtype=np.float64)
    n = len(doc_len)
    score = np.zeros(n, dtype=np.float64)
    words_hit = np.zeros((len(groups), n), dtype=bool)
    if n == 0 or not len(groups):
        return score, words_hit
    avgdl = float(doc_len.mean()) or 1.0
    norm = K1 * (1.0 - B + B * doc_len / avgdl)
    for g, postings in enumerate(groups):
        for docs, tf, w in postings:
            docs = np.asarray(docs, dtype=np.int64)
            tf = np.asarray(tf, dtype=np.float64)
            df = len(np.unique(docs))
            if df == 0:
                continue
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            np.add.at(score, docs, w * idf * tf * (K1 + 1.0) / (tf + norm[docs]))
            words_hit[g, docs] = True
    score *= words_hit.mean(axis=0)
    return score, words_hit


def contains_all(texts, words: Sequence[str]) -> np.ndarray:
    """Which of ``texts`` (a pandas Series of lower-case strings) hold every word.

    A word matches as a substring, so a word being typed (``chec``) already
    finds ``checkout``; vectorized over the texts, never a Python loop over them.
    """
    m = np.ones(len(texts), dtype=bool)
    for w in words:
        m &= texts.str.contains(w, regex=False).to_numpy(dtype=bool)
    return m
