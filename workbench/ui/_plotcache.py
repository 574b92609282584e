"""A bounded cache of the plot columns every served session shares.

The timeline's and the slice bars' columns are computed once per slice,
highlighted cause and window for all the sessions of an investigation
(:meth:`workbench.ui.data.InvestigationData.shared_plot`). Kept without a limit,
a long-running server that many people drill through would keep every slice
anyone ever looked at. This cache keeps the least recently used out once it
holds more than ``entries`` plot entries or more than ``nbytes`` bytes of columns.

Method: least-recently-used replacement (Mattson, Gecsei, Slutz and Traiger,
"Evaluation techniques for storage hierarchies", IBM Systems Journal 9(2), 1970),
as implemented by ``cachetools.LRUCache``; sizes are estimated from the columns'
arrays (``numpy.ndarray.nbytes``) and lists.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np
from cachetools import LRUCache

__all__ = ["PLOT_CACHE_BYTES", "PLOT_CACHE_ENTRIES", "PlotCache", "nbytes"]

#: plot entries kept per investigation (a timeline's columns for 7 days of hours: ~10 kB)
PLOT_CACHE_ENTRIES = 256
#: bytes of plot columns kept per investigation (estimated, see :func:`nbytes`)
PLOT_CACHE_BYTES = 64 * 2**20


def nbytes(obj: Any) -> int:
    """An estimate of the bytes held by plot columns: arrays, lists, dicts of them.

    Parameters
    ----------
    obj:
        A column (``numpy`` array, list), a dict of columns, or a scalar.

    Returns
    -------
    int
        ``nbytes`` of arrays, the list and its strings for lists, the sum for dicts.
    """
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        items = sum(map(sys.getsizeof, obj)) if obj and isinstance(obj[0], str) else 0
        nested = [v for v in obj if isinstance(v, (np.ndarray, dict, list, tuple))]
        return sys.getsizeof(obj) + items + sum(nbytes(v) for v in nested)
    return sys.getsizeof(obj)


class PlotCache(LRUCache):
    """Least recently used plot entries out beyond ``entries`` entries or ``max_bytes`` bytes.

    Values are ``(frame, columns)`` pairs (:meth:`InvestigationData.shared_plot`): only
    the columns are counted, the frame belongs to the investigation's own cache. An
    entry larger than ``max_bytes`` alone is not kept (``put`` returns False). Not
    thread-safe: the caller holds its lock (a read reorders the entries too).

    Parameters
    ----------
    entries:
        Most entries kept.
    max_bytes:
        Most bytes of columns kept (estimated by :func:`nbytes`).
    """

    def __init__(self, entries: int = PLOT_CACHE_ENTRIES, max_bytes: int = PLOT_CACHE_BYTES):
        super().__init__(maxsize=max_bytes, getsizeof=lambda held: nbytes(held[1]))
        self.entries = int(entries)

    def put(self, key: Any, value: Any) -> bool:
        """Keep ``value`` under ``key`` (evicting the least recently used); False if too big."""
        if self.getsizeof(value) > self.maxsize:
            self.pop(key, None)
            return False
        self[key] = value
        while len(self) > self.entries:
            self.popitem()
        return True
