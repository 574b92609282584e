"""One searchable context per passport: changes, slices, log lines, past investigations.

:func:`search` ranks them with BM25 over a token index kept in numpy arrays and
cached in ``PASSPORT/.workbench/context/`` (DuckDB's ``fts`` extension cannot be
installed on our machines; see ``shared/design/stack-notes.md``). The CLI is
``workbench search PASSPORT "checkout ios"``.

>>> from workbench.context import search
>>> print(search("sample_data/demo", "checkout ios").summary())    # doctest: +SKIP
"""
from __future__ import annotations

from .index import KINDS, ContextIndex, build_index, load_index
from .search import SearchHit, SearchResult, search

__all__ = ["KINDS", "ContextIndex", "SearchHit", "SearchResult", "build_index", "load_index",
           "search"]
