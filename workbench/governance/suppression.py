"""Small-cell suppression of released aggregates, with complementary suppression.

Statistical disclosure control for magnitude and frequency tables (Cox,
"Suppression methodology and statistical disclosure control", JASA 75, 1980;
Hundepool et al., *Statistical Disclosure Control*, Wiley 2012, ch. 4): a cell
whose count is in ``[1, k-1]`` is withheld (*primary* suppression), and then,
in every group of cells whose total is released (a margin: all values of a
dimension at one time, a row or a column of a heatmap), more cells are withheld
(*complementary* suppression) until the withheld cells of the group are either
none or at least two whose counts add up to ``k`` or more. Subtracting the
released cells from the margin then gives only the total of two or more
withheld cells, which is itself not small, so no withheld cell can be
recomputed from margins or shares. The smallest released cell is chosen each
time (least information lost, the usual greedy heuristic). A group that runs
out of cells to withhold has a total below ``k``: that total is a small count
itself, withheld wherever it is released as a cell.

A cell is withheld by setting its measures (and what is derived from them:
rates, shares) to NaN; the rows stay so that a table's shape does not tell
what was hidden.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_K", "suppress_mask", "suppress"]

#: smallest count released by default
DEFAULT_K = 11


def _fix_group(counts: np.ndarray, hidden: np.ndarray, idx: np.ndarray, k: int) -> bool:
    """Complementary suppression in one group (positions ``idx``); True if it changed."""
    changed = False
    while True:
        h = hidden[idx]
        n_hidden = int(h.sum())
        total_hidden = float(counts[idx][h].sum())
        if n_hidden == 0 or (n_hidden >= 2 and total_hidden >= k):
            return changed
        free = idx[~h & (counts[idx] > 0)]
        if free.size == 0:  # the group's total is then below k: a small count itself,
            return changed  # withheld wherever it is released as a cell
        hidden[free[np.argmin(counts[free])]] = True
        changed = True


def suppress_mask(table: pd.DataFrame, count: str, groups: Sequence[Sequence[str]],
                  k: int = DEFAULT_K) -> np.ndarray:
    """Which rows of ``table`` to withhold.

    Parameters
    ----------
    table:
        One row per released cell.
    count:
        The column holding each cell's count (sessions, users, rows).
    groups:
        Column lists whose groups have a released total: ``[["ts"]]`` when the
        cells of each time add up to a released total; ``[["row"], ["col"]]``
        for a two-way table with both margins. ``[[]]`` is the grand total.
    k:
        Smallest count released.

    Returns
    -------
    numpy.ndarray
        Boolean, True for a withheld row.
    """
    if k < 1:
        raise ValueError(f"k={k}: expected a positive count")
    counts = table[count].to_numpy(dtype=float)
    hidden = (counts >= 1) & (counts < k)
    group_idx = []
    for cols in groups:
        if not cols:
            group_idx.append(np.arange(len(table)))
            continue
        codes = table.groupby(list(cols), sort=False, dropna=False).ngroup().to_numpy()
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        group_idx.extend(np.split(order, bounds))
    changed = True
    while changed:  # a cell withheld for one margin can unbalance another: repeat
        changed = False
        for idx in group_idx:
            changed |= _fix_group(counts, hidden, idx, k)
    return hidden


def suppress(table: pd.DataFrame, count: str, groups: Sequence[Sequence[str]],
             columns: Sequence[str], k: int = DEFAULT_K) -> pd.DataFrame:
    """A copy of ``table`` with ``columns`` (and ``count``) set to NaN in withheld rows.

    See :func:`suppress_mask` for the parameters; ``columns`` are the values
    released per cell (measures, rates, shares).
    """
    out = table.copy()
    mask = suppress_mask(table, count, groups, k)
    for c in {count, *columns}:
        out[c] = out[c].astype(float)
        out.loc[mask, c] = np.nan
    return out
