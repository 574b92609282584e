"""What a role without ``view_unmasked`` is shown: the workbench's frames, small cells withheld.

Every aggregate a served viewer receives (the ranked slices and localization
table, the heatmap, the rate-versus-mix split, timelines and so the compared
timelines and the counterfactual) is computed by :class:`ReleasedData`, an
:class:`~workbench.ui.data.InvestigationData` whose release hooks apply
small-cell suppression with complementary cells (:mod:`workbench.governance.suppression`; Cox,
JASA 1980; Hundepool et al., *Statistical Disclosure Control*, 2012, ch. 4) on
the server, before anything is put in a Bokeh document. A cell's count is its
fewest fact rows over the baseline and observed periods
(:func:`~workbench.ui.data.cell_count`).

The released margins of each table are its groups: the values of one dimension
inside the shown slice add up to the shown slice (the ranked list, the
rate/mix split: one group per dimension); a heatmap's rows and columns add up
to the ranked rows of its two dimensions, whose withheld values it withholds
too, so the same filter's tables agree on what is hidden. A timeline withholds
each time bucket whose count is small (primary suppression only; see
``README``, "Serving to others", for what is not covered).
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from ..governance.suppression import DEFAULT_K, suppress, suppress_linked
from .data import InvestigationData, _key

__all__ = ["ReleasedData", "released"]

_RANKED = ["share", "baseline", "observed", "relative_change", "traffic_share"]
_HEAT = ["share", "relative_change", "baseline", "observed", "traffic_share"]
_MIX = ["rate", "mix", "w0", "w1", "r0", "r1"]
_TIMELINE = ["observed", "num", "den", "expected", "lower", "upper"]


def released(data: InvestigationData, k: int = DEFAULT_K) -> "ReleasedData":
    """``data`` as a role without the unmasked grant sees it (one per ``data`` and ``k``,
    shared by every such session)."""
    if isinstance(data, ReleasedData):
        return data if data.k == k else released(data.base, k)
    with data._lock:
        out = data._cache.get(("released", k))
        if out is None:
            out = data._cache[("released", k)] = ReleasedData(data, k)
        return out


class ReleasedData(InvestigationData):
    """An :class:`InvestigationData` whose frames have no count in ``[1, k-1]``.

    Parameters
    ----------
    base:
        The investigation's data (shared: its leaves and replay engine are reused).
    k:
        Smallest count released.
    """

    def __init__(self, base: InvestigationData, k: int = DEFAULT_K):  # noqa: D107
        self.__dict__.update(base.__dict__)
        # Its own cache (its frames differ from the base's under the same keys).
        self._cache, self._lock, self._key_locks = {}, threading.RLock(), {}
        self.base, self.k = base, int(k)

    def replay(self):
        """The base's replay engine (its snapshots are released by the session state)."""
        return self.base.replay()

    def leaves(self) -> pd.DataFrame | None:
        """The base's leaves (never sent to a page; every frame from them is released)."""
        return self.base.leaves()

    # ------------------------------------------------------------------ one slice's cells
    def hidden_cells(self, filt: dict | None = None) -> dict:
        """Which cells inside ``filt`` are withheld: ``{(d, v): bool}`` for each value of a
        dimension and ``{(x, v, y, w): bool}`` (``x < y``) for each cell of a pair.

        One :func:`~workbench.governance.suppression.suppress_linked` over them all: the
        values of each dimension add up to the slice, and each pair's cells add up to
        the values of both its dimensions. The cells the slice one level up withheld
        (its pairs' cells are this slice's values) stay withheld.
        """
        filt = dict(filt or {})
        return self._cached(("hidden", _key(filt)), lambda: self._hidden(filt))

    def _hidden(self, filt: dict) -> dict:
        lv = self.leaves()
        if lv is None or not len(lv):
            return {}
        sub = lv[self._mask(lv, filt)]
        dims = sorted(d for d in self.dimensions if d not in filt and d in sub)
        keys, counts, equations, pos = [], [], [], {}

        def add(key, count):
            pos[key] = len(keys)
            keys.append(key)
            counts.append(count)

        for d in dims:
            g = self._group(sub, [d], 1.0)
            for v, c in zip(g[d].astype(str), g["count"]):
                add((d, v), c)
            equations.append((None, [pos[(d, v)] for v in g[d].astype(str)]))
        for i, x in enumerate(dims):
            for y in dims[i + 1:]:
                g = self._group(sub, [x, y], 1.0)
                g[x], g[y] = g[x].astype(str), g[y].astype(str)
                for v, w, c in zip(g[x], g[y], g["count"]):
                    add((x, v, y, w), c)
                for col in (x, y):
                    for v, rows in g.groupby(col).indices.items():
                        members = [pos[(x, a, y, b)] for a, b in
                                   zip(g[x].to_numpy()[rows], g[y].to_numpy()[rows])]
                        equations.append((pos[(col, v)], members))
        seed = np.zeros(len(keys), bool)
        for kk, vv in filt.items():  # what each slice one level up withheld
            up = self.hidden_cells({j: u for j, u in filt.items() if j != kk})
            for key, i in pos.items():
                if len(key) == 2:
                    a, b = sorted([(kk, str(vv)), key])
                    seed[i] |= bool(up.get((*a, *b), False))
        h = suppress_linked(np.asarray(counts, float), equations, self.k, hidden=seed)
        return dict(zip(keys, h.tolist()))

    def _cell_hidden(self, filt: dict, f: dict, count: float) -> bool:
        """Whether the slice ``f`` (inside ``filt``) is withheld."""
        extra = sorted((d, str(v)) for d, v in f.items() if d not in filt)
        cells = self.hidden_cells(filt)
        key = tuple(x for kv in extra for x in kv)
        if key in cells:
            return cells[key]
        return bool(1 <= count < self.k)  # deeper than a pair: its own count only

    # ------------------------------------------------------------------ release hooks
    def _release_ranked(self, df: pd.DataFrame, filt: dict) -> pd.DataFrame:
        hide = [self._cell_hidden(filt, f, c) for f, c in zip(df["filter"], df["count"])]
        return _withhold(df, np.asarray(hide, bool), _RANKED)

    def _release_heatmap(self, df: pd.DataFrame, filt: dict, x: str, y: str) -> pd.DataFrame:
        hide = [self._cell_hidden(filt, {x: v, y: w}, c)
                for v, w, c in zip(df[x], df[y], df["count"])]
        return _withhold(df, np.asarray(hide, bool), _HEAT)

    def _release_mix(self, df: pd.DataFrame, filt: dict, dimension: str) -> pd.DataFrame:
        hide = [self._cell_hidden(filt, {dimension: v}, c)
                for v, c in zip(df["value"], df["count"])]
        return _withhold(df, np.asarray(hide, bool), _MIX)

    def _release_timeline(self, df: pd.DataFrame) -> pd.DataFrame:
        return suppress(df, "count", [], [c for c in _TIMELINE if c in df], self.k)


def _withhold(df: pd.DataFrame, hide: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``df`` with ``columns`` and ``count`` NaN in the rows ``hide`` (the rows stay)."""
    out = df.copy()
    for c in ("count", *columns):
        out[c] = out[c].astype(float)
        out.loc[hide, c] = np.nan
    return out
