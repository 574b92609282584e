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
too, so the same filter's tables agree on what is hidden.

A timeline's hours are cells too: each hour of a slice is one of its siblings'
hours (the other values of each of its dimensions inside the parent slice),
whose sum is the parent's hour, released as the parent's timeline. So the hours
of a slice are withheld by complementary suppression over the table *hour x
sibling* with both margins (each hour: the parent; each sibling: its own
total), then within the slice's own timeline (its total over the hours is
released by the ranked list), so that no withheld hour is the parent's hour
minus the released siblings. Exact for a slice of one dimension value (the
parent is everything); for deeper slices each parent's table is protected on
its own (a chain of cells across two parents is not closed).

The investigation's own words are released too (:attr:`ReleasedData.inv`): a
slice or a cause whose scope is a withheld cell keeps its name and confidence,
and loses its numbers (shares, rates, effect, evidence sentences, tests), so the
story text, the hypothesis cards and the effect summary cannot say them.
"""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pandas as pd

from ..governance.suppression import DEFAULT_K, suppress_linked, suppress_mask
from ._plotcache import PlotCache
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
        self._plots = PlotCache()
        self.base, self.k = base, int(k)
        self.inv = self._released_inv(base.inv)

    def replay(self):
        """The base's replay engine (its snapshots are released by the session state)."""
        return self.base.replay()

    def leaves(self) -> pd.DataFrame | None:
        """The base's leaves (never sent to a page; every frame from them is released)."""
        return self.base.leaves()

    def _load(self) -> tuple[pd.DataFrame | None, dict]:
        """The base's leaves and value codes (one query and factorization for both)."""
        return self.base._load()

    def _codes(self, dimension: str) -> tuple[np.ndarray, np.ndarray]:
        """The base's value codes of ``dimension`` (the leaves are the base's)."""
        return self.base._codes(dimension)

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

    def _release_timeline(self, df: pd.DataFrame, filt: dict | None = None) -> pd.DataFrame:
        filt = {d: str(v) for d, v in (filt or {}).items()}
        hide = np.zeros(len(df), bool)
        for d in filt:  # the slice's hours among its siblings' (both margins released)
            sib = self._siblings_by_hour(filt, d)
            if not len(sib):
                continue
            h = suppress_mask(sib, "count", [["ts"], ["value"]], self.k)
            mine = sib.loc[h & (sib["value"] == filt[d]).to_numpy(), "ts"]
            hide |= df["ts"].isin(mine).to_numpy()
        hide = suppress_mask(df, "count", [[]], self.k, hidden=hide)  # and its own total
        return _withhold(df, hide, [c for c in _TIMELINE if c in df])

    def _siblings_by_hour(self, filt: dict, d: str) -> pd.DataFrame:
        """``ts`` (naive UTC), ``value``, ``count``: every value of ``d`` inside the slice
        ``filt`` without ``d``, hour by hour."""
        parent = {j: u for j, u in filt.items() if j != d}

        def run():
            from ..store import Store
            from ..store.queries import metric_series_by

            with Store(self.db, read_only=True) as st:
                g = metric_series_by(st.con, self.sp, self.spec, d, filter=parent).frame
            g["ts"] = g["ts"].dt.tz_convert("UTC").dt.tz_localize(None)
            g["count"] = g["den" if self.kind == "ratio" else "rows"].astype(float)
            return g[["ts", "value", "count"]]
        return self._cached(("siblings", _key(parent), d), run)

    # ------------------------------------------------------------------ words and numbers
    def withheld(self, filt: dict | None) -> bool:
        """Whether the slice ``filt`` (from the whole population) is a withheld cell."""
        filt = {d: str(v) for d, v in (filt or {}).items()}
        if not filt or self.leaves() is None:
            return False
        return self._cell_hidden({}, filt, self._count(filt))

    def _released_inv(self, inv):
        """``inv`` with the numbers of withheld slices and causes' scopes taken out (its
        library record shared, so decisions recorded on either show on both)."""
        if self.leaves() is None:
            return inv
        note = (f"withheld: fewer than {self.k} units in this scope "
                "(small-cell suppression for your role)")
        slices = [s if not self.withheld(s["filter"]) else
                  {**s, "explained_share": None, "baseline": None, "observed": None,
                   "relative_change": None, "withheld": True} for s in inv.slices]
        causes = []
        for c in inv.causes:
            if self.withheld(c.get("scope")):
                c = {**c, "effect": None, "scope_share": None, "traffic_share": None,
                     "siblings": None, "evidence": [note], "tests": [], "withheld": True}
            causes.append(c)
        div = inv.divergence
        if self.withheld(div.get("scope")):
            div = {**div, "baseline": None, "observed": None, "relative_change": None}
        rate_mix = inv.rate_mix
        if slices and slices[0].get("withheld"):
            rate_mix = None
        out = dataclasses.replace(inv, slices=slices, causes=causes, divergence=div,
                                  rate_mix=rate_mix)
        object.__setattr__(out, "record", inv.record)
        return out

    def impact(self, filt: dict | None = None) -> dict:
        """The base's impact over the whole window (a released cell: its withheld hours
        are two or more adding up to k or more), or nothing for a withheld slice."""
        if self.withheld(filt):
            return {"baseline": None, "observed": None, "relative_change": None,
                    "delta": None, "hours": 0}
        return self.base.impact(filt)


def _withhold(df: pd.DataFrame, hide: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``df`` with ``columns`` and ``count`` NaN in the rows ``hide`` (the rows stay)."""
    out = df.copy()
    for c in ("count", *columns):
        out[c] = out[c].astype(float)
        out.loc[hide, c] = np.nan
    return out
