"""The numbers behind the workbench views, as pandas frames (no panel, no holoviews here).

:class:`InvestigationData` wraps one :class:`~workbench.investigation.Investigation`
and the store it read, and answers what the views ask: a slice's timeline with
its own seasonal baseline band, the slices one level below a filter ranked by
their share of the divergence, a two-dimension heatmap, a rate-versus-mix split,
the change log with hover text, the data-quality gaps, and a search index.

Every frame is computed from the same SQL and the same verbs the investigation
used (``metric_series``, ``detect_divergence``, the ``leaves`` query the
investigation kept in ``Investigation.queries``), so a number on screen and a
number in the CLI answer agree. Results are cached per filter: a second click on
a slice costs a dictionary lookup.

The store is opened read-only for each query and closed again, so a served
dashboard never holds a lock on the file longer than one query.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..textsearch import contains_all, query_words
from ._plotcache import PlotCache

__all__ = ["InvestigationData", "slice_label", "parse_slice", "cell_count", "ROLE_NAMES",
           "WIDGET_VALUES"]

ROLE_NAMES = ("engineer", "operator", "product manager")

#: A dimension with more distinct values than this is never listed whole: widget
#: option lists take its busiest values, the search box finds the others.
WIDGET_VALUES = 200
#: Values kept on each axis of the heatmap (the ones carrying most of the divergence).
HEATMAP_VALUES = 40


def slice_label(filt: dict | None) -> str:
    """``{platform: ios, app_version: 5.2}`` -> ``platform=ios, app_version=5.2``."""
    if not filt:
        return "everything"
    return ", ".join(f"{k}={v}" for k, v in filt.items())


def parse_slice(label: str) -> dict:
    """The inverse of :func:`slice_label` (``everything`` -> ``{}``)."""
    label = (label or "").strip()
    if not label or label == "everything":
        return {}
    out = {}
    for part in re.split(r"\s*[,&]\s*", label):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def cell_count(g: pd.DataFrame, kind: str = "ratio") -> np.ndarray:
    """Each row's count for disclosure control: the units it holds (a ratio's
    denominator, sessions or users; otherwise fact rows), the fewer of its baseline and
    observed periods that have any, so a cell small in either period is small."""
    obs_c, base_c = ("obs_den", "base_den") if kind == "ratio" else ("obs_rows", "base_rows")
    if obs_c not in g:
        return np.full(len(g), np.nan)
    obs = g[obs_c].to_numpy(dtype=float)
    base = g[base_c].to_numpy(dtype=float) if base_c in g else obs
    return np.where((obs > 0) & (base > 0), np.minimum(obs, base), np.maximum(obs, base))


def _key(filt: dict | None) -> tuple:
    return tuple(sorted((str(k), str(v)) for k, v in (filt or {}).items()))


def _naive(ts) -> pd.Timestamp | None:
    """UTC timestamps without a zone: what Bokeh's datetime axis expects."""
    if ts is None or (not isinstance(ts, str) and pd.isna(ts)):
        return None
    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def _utc(ts) -> pd.Timestamp | None:
    if ts is None:
        return None
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _fmt_rollout(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{float(x):g}%"


def _fmt_scope(scope) -> str:
    if not scope:
        return "everywhere"
    if isinstance(scope, str):
        return scope
    return ", ".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in dict(scope).items())


@dataclass
class InvestigationData:
    """An investigation plus the store it read: the data source of every view.

    Parameters
    ----------
    inv:
        The result of :func:`workbench.investigate`.
    db:
        The DuckDB store the investigation read (``inv.db`` by default).
    as_of:
        For a replay snapshot, the moment the data was cut at (events before it,
        changes at or before it); ``None`` for the live investigation.
    passport_dir:
        The passport directory (needed to replay); read from the store if omitted.
    """

    inv: Any
    db: str | None = None
    as_of: pd.Timestamp | None = None
    passport_dir: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _key_locks: dict = field(default_factory=dict, repr=False)
    _plots: PlotCache = field(default_factory=PlotCache, repr=False)

    def __post_init__(self):
        from ..store import Store
        from ..store.queries import cardinalities

        self.db = str(self.db or self.inv.db)
        with Store(self.db, read_only=True) as st:
            self.sp = st.passport(self.inv.passport)
            self._changes = st.changes(self.sp.name)
            #: distinct values per dimension (its dictionary's size): above
            #: :data:`WIDGET_VALUES`, values are searched in the store, never listed whole
            self.cardinality = cardinalities(st.con, self.sp)
        self.spec = self.sp.manifest.metric(self.inv.metric)
        self.grain = self.sp.manifest.grain_td
        if self.passport_dir is None:
            self.passport_dir = self.sp.directory
        if self.as_of is not None:
            self.as_of = _utc(self.as_of)
            self._changes = self._changes[self._changes["ts"] <= self.as_of]

    # ------------------------------------------------------------------ replay
    def replay(self):
        """The :class:`~workbench.ui.replay.ReplayEngine` of this investigation (created once,
        shared by every view and session showing it)."""
        with self._lock:
            eng = self._cache.get(("replay",))
            if eng is None:
                from .replay import ReplayEngine
                eng = self._cache[("replay",)] = ReplayEngine(self)
            return eng

    # ------------------------------------------------------------------ basics
    @property
    def metric(self) -> str:
        return self.inv.metric

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(self.sp.manifest.all_dimensions)

    @property
    def hierarchies(self) -> dict:
        return dict(self.sp.manifest.hierarchies)

    @property
    def onset(self) -> pd.Timestamp | None:
        return _utc(self.inv.divergence.get("onset"))

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        w = self.inv.divergence.get("window")
        return (_utc(w[0]), _utc(w[1])) if w else None

    @property
    def causes(self) -> list[dict]:
        return list(self.inv.causes or [])

    @property
    def slices(self) -> list[dict]:
        return list(self.inv.slices or [])

    @property
    def top_slice(self) -> dict:
        return dict(self.slices[0]["filter"]) if self.slices else {}

    def data_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        s = self.inv.series
        return _utc(s["ts"].min()), _utc(s["ts"].max())

    def values(self, dimension: str, filt: dict | None = None,
               limit: int | None = None) -> list[str]:
        """Values of ``dimension`` (inside ``filt``), largest traffic first.

        Cached per dimension and filter: the slice selector asks for every
        dimension's values on each click, and on a large passport each answer is a
        group-by over the whole leaves table (on 10M rows these asks were about
        30% of the server's time during a run of slice clicks). ``limit`` keeps the
        busiest values only (what a widget lists; see :data:`WIDGET_VALUES`).
        """
        def run():
            lv = self.leaves()
            if lv is None or dimension not in lv.columns:
                return []
            # Sums per value code (_group_codes: np.bincount over the codes computed once):
            # a group-by of the value strings sorted and factorized them on every ask,
            # 4 s of a 1M-value server's start for three dimensions.
            g = self._group_codes(lv, self._mask(lv, filt), dimension, 0.0)
            return g[dimension].to_numpy()[np.argsort(-g["obs_den"].to_numpy(),
                                                      kind="stable")].tolist()
        return list(self._cached(("values", dimension, _key(filt)), run)[:limit])

    def _codes(self, dimension: str) -> tuple[np.ndarray, np.ndarray]:
        """The leaves' ``dimension`` as integer codes and the value (``str``) of each code.

        An integer-coded store's codes come with the leaves (:meth:`_load`); a
        string column is factorized here, once.
        """
        def run():
            codes, names = pd.factorize(self.leaves()[dimension], sort=False)
            return codes, np.asarray(names, dtype=object).astype(str).astype(object)
        known = self._load()[1].get(dimension)
        return known if known is not None else self._cached(("codes", dimension), run)

    # ------------------------------------------------------------------ cache
    def _cached(self, key, fn):
        # One computation per key: a click on a slice whose timeline is being
        # prefetched waits for that query instead of running it a second time.
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            value = fn()
            with self._lock:
                self._cache[key] = value
        return value

    def shared_plot(self, key: tuple, frame: Any, make: Callable[[], Any]) -> Any:
        """A plot element of ``frame`` built once for every session showing this data.

        Served, each session drew its own (identical) plot of the same cached frame
        on every click. The element (the columns of the timeline or the slice bars)
        is made once per ``key`` and shared: sessions only assign it to their own
        Bokeh models. ``frame`` is the data drawn; an entry made from another frame
        object (a replay step's, a refreshed one) is made again. Entries are kept in
        a bounded LRU (:class:`~workbench.ui._plotcache.PlotCache`): the least
        recently used go first once there are too many or they hold too many bytes.
        """
        with self._lock:
            held = self._plots.get(("plot", *key))
        if held is not None and held[0] is frame:
            return held[1]
        value = make()
        with self._lock:
            self._plots.put(("plot", *key), (frame, value))
        return value

    def is_cached(self, kind: str, filt: dict | None, *rest) -> bool:
        """Whether ``kind`` (``timeline``, ``ranked``...) of ``filt`` is cached (instant)."""
        return (kind, _key(filt), *rest) in self._cache

    # ------------------------------------------------------------------ timelines
    def timeline(self, filt: dict | None = None) -> pd.DataFrame:
        """The slice's metric per bucket with its seasonal baseline band.

        Columns ``ts`` (UTC, zone-free for plotting), ``observed``, ``expected``,
        ``lower``, ``upper``, ``num``, ``den``. The whole population reuses the
        investigation's own detection; a slice gets the same detector run on its
        own series (its baseline, not the total's), with the investigation's
        window imposed so the band is comparable.
        """
        return self._cached(("timeline", _key(filt)), lambda: self._timeline(filt or {}))

    def has_timeline(self, filt: dict | None) -> bool:
        """Whether :meth:`timeline` of ``filt`` is cached (instant)."""
        return self.is_cached("timeline", filt)

    def has_ranked(self, filt: dict | None, *, top: int = 12) -> bool:
        """Whether :meth:`ranked_slices` of ``filt`` is cached (instant)."""
        return self.is_cached("ranked", filt, top)

    def _timeline(self, filt: dict) -> pd.DataFrame:
        from ..detect import detect_divergence
        from ..store import Store, metric_series

        if not filt:
            series = self.inv.series
        else:
            with Store(self.db, read_only=True) as st:
                series = metric_series(st.con, self.sp, self.spec, filter=filt).frame
        start, end = self.data_range()
        idx = pd.date_range(start.floor(self.grain), end.floor(self.grain), freq=self.grain)
        det_in = series.set_index("ts")[["num", "den", "rows"]].reindex(idx)
        band = None
        # the investigation's detection is of the scope the divergence was found in:
        # its band belongs under that scope's line only (never a slice's under the total)
        found_in = dict(self.inv.divergence.get("scope") or {})
        if filt == found_in and self.inv.detection is not None and \
                len(self.inv.detection.expected):
            band = self.inv.detection.expected
        elif series["num"].notna().sum() >= 48:
            w = self.window
            try:
                band = detect_divergence(det_in, kind=self.kind, better=self.spec.better,
                                         grain=self.grain,
                                         window=None if w is None else (w[0], w[1])).expected
            except Exception:  # a slice too thin for a baseline: show it without a band
                band = None
        out = pd.DataFrame(index=idx)
        value = det_in["num"] / det_in["den"] if self.kind == "ratio" else det_in["num"]
        out["observed"] = value
        for c in ("expected", "lower", "upper"):
            out[c] = band[c].reindex(idx) if band is not None and c in band else np.nan
        out["num"], out["den"] = det_in["num"], det_in["den"]
        out["count"] = det_in["den" if self.kind == "ratio" else "rows"]
        out.index = out.index.tz_convert("UTC").tz_localize(None)
        out.index.name = "ts"
        out = self._release_timeline(out.reset_index(), filt)
        out.attrs["filter"] = dict(filt)
        out.attrs["band_scope"] = dict(filt) if band is not None else None  # the band's scope
        return out

    def impact(self, filt: dict | None = None) -> dict:
        """Observed against expected over the divergence window, for a slice.

        ``delta`` is in numerator units (conversions, euros): for a ratio,
        ``sum(num) - sum(expected rate * den)``.
        """
        fr = self.timeline(filt)
        w = self.window
        if w is None:
            return {"baseline": None, "observed": None, "relative_change": None, "delta": None,
                    "hours": 0}
        m = (fr["ts"] >= _naive(w[0])) & (fr["ts"] <= _naive(w[1]))
        sub = fr[m].dropna(subset=["observed"])
        if self.kind == "ratio":
            exp_num = float((sub["expected"] * sub["den"]).sum())
            obs_num, den = float(sub["num"].sum()), float(sub["den"].sum())
            base = exp_num / den if den else np.nan
            obs = obs_num / den if den else np.nan
        else:
            exp_num, obs_num = float(sub["expected"].sum()), float(sub["num"].sum())
            base, obs = exp_num / max(len(sub), 1), obs_num / max(len(sub), 1)
        rel = obs / base - 1 if base and np.isfinite(base) else None
        return {"baseline": base, "observed": obs, "relative_change": rel,
                "delta": obs_num - exp_num, "hours": int(len(sub))}

    # ------------------------------------------------------------------ slices
    def leaves(self) -> pd.DataFrame | None:
        """Observed and baseline sums per leaf: the investigation's own ``leaves`` query."""
        return self._load()[0]

    def _load(self) -> tuple[pd.DataFrame | None, dict]:
        """The leaves (:meth:`leaves`) and, for each dimension the store holds as integer
        codes, the value codes of :meth:`_codes` made from those integers (factorizing
        the decoded strings again took a second on a 1M-value dimension)."""
        sql = (self.inv.queries or {}).get("leaves")
        if not sql:
            return None, {}

        def run():
            from ..store import Store
            from ..store.queries import dictionary
            codes_of = {}
            with Store(self.db, read_only=True) as st:
                df = st.con.execute(sql).df()
                # A large store's leaves come from its fact rows: dimension codes, decoded
                # here (the UI showed "0", "1", "2" for platform and searched codes).
                for d in (d for d in self.dimensions
                          if d in df and pd.api.types.is_integer_dtype(df[d])):
                    dt = dictionary(st.con, self.sp, d)
                    decode = pd.Series(dt["value"].to_numpy(dtype=object),
                                       index=dt["code"].to_numpy())
                    codes, uniq = pd.factorize(df[d].to_numpy(), sort=False)
                    codes_of[d] = (codes, pd.Series(uniq).map(decode).astype(str)
                                   .to_numpy(dtype=object))
                    df[d] = df[d].map(decode)
            for c in ("obs_num", "base_num", "obs_den", "base_den", "obs_rows", "base_rows"):
                if c in df:
                    df[c] = df[c].astype(float).fillna(0.0)
            for d in self.dimensions:
                if d in df:
                    df[d] = df[d].astype(str)
            from ..events.rank import leaf_deviation
            df["deviation"] = leaf_deviation(df, self.kind)
            return df, codes_of
        return self._cached(("leaves",), run)

    @staticmethod
    def _mask(lv: pd.DataFrame, filt: dict | None) -> np.ndarray:
        m = np.ones(len(lv), dtype=bool)
        for k, v in (filt or {}).items():
            if k not in lv.columns:
                return np.zeros(len(lv), dtype=bool)
            m &= (lv[k].astype(str) == str(v)).to_numpy()
        return m

    def _metric_of(self, g: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        if self.kind == "ratio":
            base = g["base_num"] / g["base_den"].where(g["base_den"] > 0)
            obs = g["obs_num"] / g["obs_den"].where(g["obs_den"] > 0)
        else:
            base, obs = g["base_num"], g["obs_num"]
        return base, obs

    @staticmethod
    def _sum_cols(lv: pd.DataFrame) -> list[str]:
        return ["obs_num", "obs_den", "base_num", "base_den", "deviation"] + [
            c for c in ("obs_rows", "base_rows") if c in lv]

    def _group(self, sub: pd.DataFrame, by: list[str], total_dev: float) -> pd.DataFrame:
        g = sub.groupby(by, observed=True)[self._sum_cols(sub)].sum().reset_index()
        tot = sub["obs_den" if self.kind == "ratio" else "base_num"].sum()
        return self._derive(g, tot, total_dev)

    def _group_codes(self, lv: pd.DataFrame, m: np.ndarray, d: str,
                     total_dev: float) -> pd.DataFrame:
        """:meth:`_group` of ``lv[m]`` by the one dimension ``d``, summed per value code
        (np.bincount; unsorted): a group-by of a million strings factorized them again."""
        codes, names = self._codes(d)
        c = codes[m]
        n = np.bincount(c, minlength=len(names))
        present = n > 0
        g = pd.DataFrame({d: names[present]})
        for col in self._sum_cols(lv):
            g[col] = np.bincount(c, weights=lv[col].to_numpy(dtype=float)[m],
                                 minlength=len(names))[present]
        tot = lv["obs_den" if self.kind == "ratio" else "base_num"].to_numpy(dtype=float)[m].sum()
        return self._derive(g, tot, total_dev)

    def _derive(self, g: pd.DataFrame, tot_den: float, total_dev: float) -> pd.DataFrame:
        """The groups' count, baseline, observed, change and shares from their sums
        (``tot_den``: the traffic of all the groups together)."""
        g["count"] = cell_count(g, self.kind)
        base, obs = self._metric_of(g)
        g["baseline"], g["observed"] = base, obs
        g["relative_change"] = obs / base.where(base != 0) - 1
        g["share"] = g["deviation"] / total_dev if total_dev else np.nan
        g["traffic_share"] = (g["obs_den"] if self.kind == "ratio" else g["base_num"]) / (
            tot_den or np.nan)
        return g

    def _count(self, filt: dict) -> float:
        """The cell count of the slice ``filt`` (see :func:`cell_count`)."""
        lv = self.leaves()
        if lv is None:
            return np.nan
        sums = lv[self._mask(lv, filt)].select_dtypes("number").sum().to_frame().T
        return float(cell_count(sums, self.kind)[0])

    # What a role without the unmasked grant may see (governance.released overrides these).
    def _release_ranked(self, df: pd.DataFrame, filt: dict) -> pd.DataFrame:
        return df

    def _release_heatmap(self, df: pd.DataFrame, filt: dict, x: str, y: str) -> pd.DataFrame:
        return df

    def _release_mix(self, df: pd.DataFrame, filt: dict, dimension: str) -> pd.DataFrame:
        return df

    def _release_timeline(self, df: pd.DataFrame, filt: dict | None = None) -> pd.DataFrame:
        return df

    def total_deviation(self) -> float:
        lv = self.leaves()
        return float(lv["deviation"].sum()) if lv is not None else 0.0

    def ranked_slices(self, filt: dict | None = None, *, top: int = 12) -> pd.DataFrame:
        """Slices one level below ``filt`` ranked by their share of the divergence.

        ``share`` is the slice's own rate deviation (``obs_num - obs_den *
        base_rate`` per leaf, summed) over the whole metric's deviation, so shares
        are comparable at every drill level. Localized slices inside ``filt``
        come first, flagged ``source = "localized"``.
        """
        return self._cached(("ranked", _key(filt), top), lambda: self._ranked(filt or {}, top))

    def _ranked(self, filt: dict, top: int) -> pd.DataFrame:
        cols = ["slice", "filter", "share", "baseline", "observed", "relative_change",
                "traffic_share", "source"]
        lv = self.leaves()
        rows = []
        for s in self.slices:
            f = dict(s["filter"])
            if f != filt and all(f.get(k) == v for k, v in filt.items()):
                rows.append({"slice": slice_label(f), "filter": f,
                             "share": s.get("explained_share"), "baseline": s.get("baseline"),
                             "observed": s.get("observed"),
                             "relative_change": s.get("relative_change"),
                             "traffic_share": s.get("den_share"), "source": "localized",
                             "count": self._count(f), "group": "localized"})
        if lv is not None and len(lv):
            total = self.total_deviation()
            m = self._mask(lv, filt)
            coarse_of = self.hierarchies  # coarse -> fine
            n_loc = len(rows)
            for d in self.dimensions:
                if d in filt or coarse_of.get(d) in filt:
                    continue
                g = self._group_codes(lv, m, d, total)  # ranked by share below
                if len(g) <= 1:
                    continue
                # Only rows that can make the list (a dimension can have a million values;
                # up to n_loc of them may repeat a localized slice and be dropped).
                g = g.sort_values("share", ascending=False,
                                  key=lambda s: s.fillna(-np.inf)).head(top + n_loc)
                for r in g.itertuples(index=False):
                    f = {**filt, d: str(getattr(r, d))}
                    rows.append({"slice": slice_label(f), "filter": f, "share": r.share,
                                 "baseline": r.baseline, "observed": r.observed,
                                 "relative_change": r.relative_change,
                                 "traffic_share": r.traffic_share, "source": "breakdown",
                                 "count": r.count, "group": d})
        df = pd.DataFrame(rows, columns=cols + ["count", "group"])
        df = self._release_ranked(df, filt).drop(columns="group")
        if df.empty:
            return df
        df = df.drop_duplicates(subset="slice", keep="first")
        loc = df[df["source"] == "localized"]
        rest = df[df["source"] != "localized"].copy()
        # Most explanatory first: the share of the divergence, in its direction.
        rest = rest.sort_values("share", ascending=False, key=lambda s: s.fillna(-np.inf))
        return pd.concat([loc, rest.head(max(top - len(loc), 0))], ignore_index=True)

    def heatmap(self, filt: dict | None, x: str, y: str) -> pd.DataFrame:
        """Share of the divergence and relative change per ``(x, y)`` cell inside ``filt``."""
        def run():
            lv = self.leaves()
            cols = [x, y, "share", "relative_change", "baseline", "observed", "traffic_share",
                    "count"]
            if lv is None or x == y or x not in lv or y not in lv:
                return pd.DataFrame(columns=cols)
            sub = lv[self._mask(lv, filt)]
            for a in (x, y):  # a high-cardinality axis: the values that explain most
                dev = sub.groupby(a, observed=True)["deviation"].sum()
                if len(dev) > HEATMAP_VALUES:
                    keep = dev.abs().nlargest(HEATMAP_VALUES).index
                    sub = sub[sub[a].isin(keep)]
            g = self._group(sub, [x, y], self.total_deviation())
            g[x], g[y] = g[x].astype(str), g[y].astype(str)
            return self._release_heatmap(g[cols], dict(filt or {}), x, y)
        return self._cached(("heat", _key(filt), x, y), run)

    def rate_mix(self, filt: dict | None, dimension: str) -> pd.DataFrame:
        """Kitagawa split of the slice's change across the values of one dimension.

        For value ``i`` with traffic shares ``w0, w1`` and rates ``r0, r1``
        (baseline, observed): ``rate = (w0 + w1) / 2 * (r1 - r0)`` and ``mix =
        (r0 + r1) / 2 * (w1 - w0)``; the sum over values is the slice's change
        ``r1 - r0`` exactly. For a sum metric there is no mix: ``rate`` is the
        change and ``mix`` is 0.
        """
        def run():
            lv = self.leaves()
            cols = ["value", "rate", "mix", "w0", "w1", "r0", "r1"]
            if lv is None or dimension not in lv:
                return pd.DataFrame(columns=cols)
            sub = lv[self._mask(lv, filt)]
            g = sub.groupby(sub[dimension].astype(str), observed=True)[
                ["obs_num", "obs_den", "base_num", "base_den",
                 *[c for c in ("obs_rows", "base_rows") if c in sub]]].sum()
            if self.kind == "ratio":
                w0 = g["base_den"] / max(g["base_den"].sum(), 1e-12)
                w1 = g["obs_den"] / max(g["obs_den"].sum(), 1e-12)
                r0 = (g["base_num"] / g["base_den"].where(g["base_den"] > 0)).fillna(0.0)
                r1 = (g["obs_num"] / g["obs_den"].where(g["obs_den"] > 0)).fillna(0.0)
                rate = (w0 + w1) / 2 * (r1 - r0)
                mix = (r0 + r1) / 2 * (w1 - w0)
            else:
                w0 = g["base_num"] / max(g["base_num"].sum(), 1e-12)
                w1 = g["obs_num"] / max(g["obs_num"].sum(), 1e-12)
                r0, r1 = g["base_num"], g["obs_num"]
                rate, mix = r1 - r0, r1 * 0.0
            out = pd.DataFrame({"value": g.index.astype(str), "rate": rate.to_numpy(),
                                "mix": mix.to_numpy(), "w0": w0.to_numpy(), "w1": w1.to_numpy(),
                                "r0": r0.to_numpy(), "r1": r1.to_numpy()})
            out["count"] = cell_count(g, self.kind)
            out = self._release_mix(out, dict(filt or {}), dimension)
            out["size"] = out["rate"].abs() + out["mix"].abs()
            return out.sort_values("size", ascending=False).drop(columns="size").head(12)
        return self._cached(("ratemix", _key(filt), dimension), run)

    # ------------------------------------------------------------------ changes, gaps
    def changes(self) -> pd.DataFrame:
        """The change log with the hover text of the timeline markers.

        Columns ``ts`` (zone-free UTC), ``id, kind, target, description, scope,
        author, rollout`` (as text) and ``confidence`` (the candidate's, or NaN).
        """
        def run():
            ch = self._changes.copy()
            conf = {c["change_id"]: c["confidence"] for c in self.causes}
            rank = {c["change_id"]: i + 1 for i, c in enumerate(self.causes)}
            out = pd.DataFrame({
                "ts": pd.to_datetime(ch["ts"], utc=True).dt.tz_localize(None),
                "id": ch["id"].astype(str), "kind": ch["kind"].astype(str),
                "target": ch["target"].astype(str),
                "description": ch["description"].fillna("").astype(str),
                "scope": [_fmt_scope(s) for s in ch["scope"]],
                "author": ch["author"].fillna("-").astype(str),
                "rollout": [_fmt_rollout(r) for r in ch["rollout"]],
            })
            out["confidence"] = out["id"].map(conf).astype(float)
            out["rank"] = out["id"].map(rank).astype(float)
            return out.reset_index(drop=True)
        return self._cached(("changes",), run)

    def change(self, change_id: str) -> dict | None:
        """One change's row as a dict (``None`` if unknown); looked up once per change
        for every session (each session's cards ask for theirs)."""
        def run():
            ch = self.changes()
            hit = ch[ch["id"] == change_id]
            return None if hit.empty else hit.iloc[0].to_dict()
        row = self._cached(("change", change_id), run)
        return None if row is None else dict(row)

    def gaps(self) -> pd.DataFrame:
        """Data-quality findings with a time span: ``start, end`` (zone-free), ``label``."""
        rows = []
        for f in self.inv.data_quality or []:
            if f.get("start") and f.get("end"):
                s, e = _naive(f["start"]), _naive(f["end"])
                if e is not None and e <= s:
                    e = s + self.grain
                rows.append({"start": s, "end": e + self.grain if e == s else e,
                             "label": f"{f.get('check')}: {f.get('detail', '')}",
                             "severity": f.get("severity", "")})
        return pd.DataFrame(rows, columns=["start", "end", "label", "severity"])

    # ------------------------------------------------------------------ search
    def search_items(self, library: str | Path | None = None) -> list[dict]:
        """What the search box can find besides dimension values: changes, localized
        slices, past investigations (values: :meth:`_value_hits`)."""
        def run():
            items = []
            for r in self.changes().itertuples(index=False):
                items.append({"type": "change", "key": r.id,
                              "title": f"{r.kind} {r.target}",
                              "detail": f"{r.ts:%Y-%m-%d %H:%M} · {r.scope} · {r.author} · "
                                        f"{r.description}",
                              "text": " ".join([r.id, r.kind, r.target, r.scope, r.author,
                                                r.description]).lower(),
                              "score": 0 if np.isnan(r.confidence) else r.confidence})
            for s in self.slices:
                lab = slice_label(s["filter"])
                items.append({"type": "slice", "key": lab, "title": lab,
                              "detail": f"localized, {s['explained_share']:.0%} of the divergence",
                              "text": lab.lower().replace("=", " = "), "score": 2.0})
            items.extend(_past_investigations(library))
            return items
        return self._cached(("search", str(library)), run)

    def search(self, query: str, *, library: str | Path | None = None,
               limit: int = 20) -> pd.DataFrame:
        """Items whose text holds every token of ``query`` (case-insensitive substring).

        Ranked by how many tokens hit the key or title, then by the item's own
        weight (a candidate cause's confidence; localized slices first).
        """
        cols = ["type", "key", "title", "detail"]
        tokens = query_words(query)  # the one tokenizer (workbench.textsearch)
        if not tokens:
            return pd.DataFrame(columns=cols)
        hits = []
        for it in self.search_items(library):
            if all(t in it["text"] for t in tokens):
                head = (it["key"] + " " + it["title"]).lower()
                strong = sum(t in head for t in tokens)
                hits.append((strong, it["score"], it))
        shown = {slice_label(s["filter"]) for s in self.slices}  # listed as localized
        hits += [h for h in self._value_hits(tokens, limit) if h[2]["key"] not in shown]
        hits.sort(key=lambda h: (-h[0], -h[1]))
        return pd.DataFrame([{c: h[2][c] for c in cols} for h in hits[:limit]], columns=cols)

    def _value_texts(self, dimension: str) -> pd.DataFrame:
        """Every value of ``dimension`` (busiest first) with its searchable text."""
        def run():
            v = pd.Series(self.values(dimension), dtype=object).astype(str)
            lab = (dimension + "=" + v).str.lower()
            return pd.DataFrame({"value": v, "head": lab,
                                 "text": (dimension + " = " + v).str.lower() + " " + lab})
        return self._cached(("value_texts", dimension), run)

    def _value_hits(self, tokens: list[str], limit: int) -> list[tuple]:
        """Dimension values holding every token: at most ``limit`` per dimension.

        Vectorized over the values (a dimension can have a million): one substring
        test per token and dimension, never a Python loop over the values.
        """
        out = []
        for d in self.dimensions:
            if self.cardinality.get(d, 0) > WIDGET_VALUES:
                out += [(strong, 0.5, {"type": "slice", "key": slice_label({d: v}),
                                       "title": slice_label({d: v}), "detail": "dimension value"})
                        for v, strong in self._store_value_hits(d, tokens, limit)]
                continue
            vt = self._value_texts(d)
            m = contains_all(vt["text"], tokens)
            if not m.any():
                continue
            sub = vt[m]
            strong = sum(sub["head"].str.contains(t, regex=False).to_numpy(dtype=int)
                         for t in tokens)
            top = np.argsort(-strong, kind="stable")[:limit]  # ties: busiest first
            for i in top:
                lab = slice_label({d: sub["value"].iat[i]})
                out.append((int(strong[i]), 0.5, {"type": "slice", "key": lab, "title": lab,
                                                  "detail": "dimension value"}))
        return out

    def _store_value_hits(self, dimension: str, tokens: list[str],
                          limit: int) -> list[tuple[str, int]]:
        """Values of a many-valued ``dimension`` holding every token, from the store
        (:func:`workbench.store.queries.search_values`: the same ``d = v d=v`` text as the
        in-memory search, never a million values in Python)."""
        from ..store import Store
        from ..store.queries import search_values

        with Store(self.db, read_only=True) as st:
            return search_values(st.con, self.sp, dimension, tokens, limit)


def _past_investigations(library: str | Path | None) -> list[dict]:
    """Search items for the investigations saved in the library (none if it has none)."""
    try:
        from ..investigation.library import library_root, list_investigations
    except ImportError:
        return []
    root = library_root(library)
    if not Path(root).is_dir():
        return []
    try:
        entries = list_investigations(root)
    except Exception:  # a damaged library must not break the search box
        return []
    items = []
    for e in entries[:200]:
        res = f"resolved: {e.resolution}" if e.status == "resolved" else e.status
        title = f"{e.metric} {e.verdict} onset {e.onset or '-'}"
        items.append({"type": "investigation", "key": e.investigation_id, "title": title,
                      "detail": f"{e.passport} · top {e.latest.top_cause or '-'} · {res} · "
                                f"{e.versions} version(s)",
                      "text": " ".join(str(x) for x in (e.investigation_id, e.passport, e.metric,
                                                        e.verdict, e.onset, res,
                                                        e.latest.top_cause,
                                                        e.latest.message)).lower(),
                      "score": 0.1})
    return items
