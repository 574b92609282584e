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

__all__ = ["DEFAULT_K", "suppress_mask", "suppress", "suppress_linked"]

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
                  k: int = DEFAULT_K, *, hidden: np.ndarray | None = None) -> np.ndarray:
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
    hidden:
        Rows already withheld (by a table released beside this one); kept withheld.

    Returns
    -------
    numpy.ndarray
        Boolean, True for a withheld row.
    """
    if k < 1:
        raise ValueError(f"k={k}: expected a positive count")
    counts = table[count].to_numpy(dtype=float)
    hidden = ((counts >= 1) & (counts < k)) | (
        np.zeros(len(table), bool) if hidden is None else np.asarray(hidden, bool))
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
             columns: Sequence[str], k: int = DEFAULT_K, *,
             hidden: np.ndarray | None = None) -> pd.DataFrame:
    """A copy of ``table`` with ``columns`` (and ``count``) set to NaN in withheld rows.

    See :func:`suppress_mask` for the parameters; ``columns`` are the values
    released per cell (measures, rates, shares).
    """
    out = table.copy()
    mask = suppress_mask(table, count, groups, k, hidden=hidden)
    for c in {count, *columns}:
        out[c] = out[c].astype(float)
        out.loc[mask, c] = np.nan
    return out


def suppress_linked(counts: np.ndarray, equations: Sequence[tuple[int | None, np.ndarray]],
                    k: int = DEFAULT_K, *, hidden: np.ndarray | None = None) -> np.ndarray:
    """Withheld cells of linked tables: cells that are margins of other cells.

    Parameters
    ----------
    counts:
        One count per cell, over every table released together (e.g. the values of
        each dimension in a slice, and the cells of each pair of dimensions).
    equations:
        ``(margin, members)``: the count of cell ``margin`` is the sum of the cells at
        positions ``members``; ``margin`` None for a total that is always released.
    k:
        Smallest count released.
    hidden:
        Cells already withheld (by a table released elsewhere); kept withheld.

    Returns
    -------
    numpy.ndarray
        Boolean, True for a withheld cell. In each equation either nothing is withheld,
        or (released margin) two or more members adding up to ``k`` or more, or (withheld
        margin) the margin and at least one member: no withheld cell is the difference
        of released ones.
    """
    counts = np.asarray(counts, dtype=float)
    h = ((counts >= 1) & (counts < k)) | (
        np.zeros(len(counts), bool) if hidden is None else np.asarray(hidden, bool))
    changed = True
    while changed:  # withholding a cell for one equation can unbalance another: repeat
        changed = False
        for margin, idx in equations:
            idx = np.asarray(idx, dtype=int)
            n, tot = int(h[idx].sum()), float(counts[idx][h[idx]].sum())
            if margin is not None and h[margin]:
                ok = n >= 1 or not (counts[idx] > 0).any()
            else:
                ok = n == 0 or (n >= 2 and tot >= k)
            if ok:
                continue
            free = idx[~h[idx] & (counts[idx] > 0)]
            if free.size:
                h[free[np.argmin(counts[free])]] = True
            elif margin is not None and not h[margin]:
                h[margin] = True
            else:
                continue
            changed = True
    return h
