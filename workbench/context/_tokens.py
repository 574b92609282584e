"""Tokens for the context index: lowercase words, their compounds and camelCase parts.

``checkout-api`` gives ``checkout-api``, ``checkout`` and ``api``; ``5.2`` gives
``5.2``, ``5`` and ``2``; ``PromoCodeValidator`` gives ``promocodevalidator``,
``promo``, ``code`` and ``validator``. A query word matches a document when
any of its tokens does, and the whole compound scores highest because it is
rarer (BM25's idf).
"""
from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9]+(?:[._\-/:@][A-Za-z0-9]+)*")
_SEP = re.compile(r"[._\-/:@]")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_HUMP = re.compile(r"[a-z][A-Z]")  # camelCase only: v3 and 5xx stay whole


def word_tokens(word: str) -> list[str]:
    """Tokens of one word (see the module docstring)."""
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


def tokenize(text: str) -> list[str]:
    """All tokens of a text, in order, with repeats (term frequencies count them)."""
    out: list[str] = []
    for w in _WORD.findall(text or ""):
        out += word_tokens(w)
    return out


def query_groups(query: str) -> list[list[str]]:
    """The query as groups of tokens, one group per word (deduplicated)."""
    groups, seen = [], set()
    for w in _WORD.findall(query or ""):
        toks = list(dict.fromkeys(word_tokens(w)))
        key = tuple(toks)
        if toks and key not in seen:
            seen.add(key)
            groups.append(toks)
    return groups
