"""Where a divergence is: the scans, the localization windows and the naming of slices.

The helpers of the detect and localize stages (:mod:`.stages`): the scan of
single-dimension slices and of localized conjunctions when the total does not
diverge (each confirmed by the detector at a Bonferroni-corrected level; a sum
metric's slice also as a share of the whole feed, so that shocks every slice
shares are not read as one slice's own), the localization of a window in memory or, for large passports, in DuckDB, the
level correction of sum baselines (Holt 1957; Hyndman and Athanasopoulos, FPP3
ch. 8), the concentration fallback (Adtributor's surprise, Bhagwan et al.
2014), and the shortest equivalent name of a slice.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .._format import fmt_filter
from .._format import iso as _iso
from ..errors import UsageError

#: Level of each of the three scans for an unknown divergence (total, every
#: single-dimension slice, localized conjunctions), Bonferroni-split within a scan.
SCAN_ALPHA = 0.01
#: above this many possible leaves (product of the dimensions' cardinalities) the
#: window is localized in DuckDB and the leaves frame keeps the narrow dimensions
LARGE_LEAVES = 500_000
#: a large passport's leaves frame adds narrow dimensions while their product stays below this
LEAF_BUDGET = 20_000


def _refine_onset(st, sp, spec, slices, full_idx, grain, det, *, detector="seasonal"):
    """The top slice's own divergence when its onset differs from the total's."""
    from ..detect import detect_divergence
    from ..store import metric_series

    if not slices or not slices[0]["filter"]:
        return None
    ser = metric_series(st.con, sp, spec, filter=slices[0]["filter"]).frame
    x = ser.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
    d = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain, detector=detector)
    if not d.significant or d.onset is None:
        return None
    shift = abs(pd.Timestamp(d.onset) - pd.Timestamp(det.onset))
    if shift == pd.Timedelta(0) or shift > pd.Timedelta("72h"):
        return None
    if str(slices[0].get("source", "")).startswith("concentration") and \
            pd.Timestamp(d.onset) > pd.Timestamp(det.onset):
        return None  # a fallback slice may sharpen the onset, not postpone it
    if np.sign(d.relative_change or 0) != np.sign(det.relative_change or 0):
        return None
    return d


def _slice_scan(st, sp, spec, full_idx, grain, queries: dict, window=None, *,
                detector="seasonal", total=None):
    """The most significant divergence among single-dimension slices, if any.

    Every value of every dimension (up to 60 values) is tested with the same
    detector; the level is Bonferroni-corrected for the number of slices, so
    scanning many slices does not manufacture alarms. With a ``window`` (the
    user's), each slice is tested over that window only. A sum metric's slice
    must also move against the rest of the feed (``total``, :func:`_share_holds`).
    """
    from ..detect import DetectConfig, detect_divergence
    from ..store import slice_series

    r = slice_series(st.con, sp, spec)
    queries["slice_series"] = r.sql
    groups = list(r.frame.groupby(["dimension", "value"], sort=False))
    if not groups:
        return None
    cfg = DetectConfig(alpha=(SCAN_ALPHA if window is None else 0.05) / len(groups))
    best = None
    for (d, v), g in groups:
        x = g.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        res = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain, config=cfg,
                                window=window, detector=detector)
        if res.significant and res.onset is not None and \
                (best is None or abs(res.score) > abs(best[1].score)) and \
                _share_holds(x, total, res, spec, grain, cfg, window, detector):
            best = ({d: str(v)}, res, g)
    if best is None:
        return None
    scope, res, g = best
    series = g[["ts", "num", "den", "rows"]].reset_index(drop=True)
    series["value"] = series["num"] / series["den"] if spec.kind == "ratio" else series["num"]
    return scope, res, series


def _localized_scan(st, sp, spec, full_idx, grain, queries: dict, *, candidates: int = 5,
                    spans: tuple[str, ...] = ("1D", "3D", "7D"), window=None,
                    detector="seasonal", localizer=None, total=None):
    """A divergence hidden in a conjunction (iOS 5.0, or NL x android).

    The most recent span (the last day, three days, week) is compared with the
    same span one and two weeks before, leaf by leaf: a drop that began a day
    ago is diluted six-fold in a week-long window, so each span is tried. The
    localizer (FDR-controlled over every slice of the lattice) proposes at most
    ``candidates`` slices per span, and each distinct one is confirmed by the
    detector on its own series at a Bonferroni-corrected level (over every
    candidate of every span). With a ``window`` (the user's) it is the one span,
    and each candidate is tested over it.
    """
    from ..detect import DetectConfig, detect_divergence
    from ..localize import localize
    from ..store import leaves as q_leaves
    from ..store import metric_series

    m = sp.manifest
    end = full_idx[-1] + grain
    week = pd.Timedelta("7D")
    dims = list(m.all_dimensions)
    from ..store import cardinalities

    cards = cardinalities(st.con, sp, dims)
    large = float(np.prod([max(c, 1) for c in cards.values()], dtype=float)) > LARGE_LEAVES
    picks: list[dict] = []
    if window is not None:
        spans = (window[1] - window[0],)
        end = window[1]
    for span in spans:
        w = pd.Timedelta(span)
        if end - 2 * week - w < full_idx[0]:
            continue
        obs = (end - w, end)
        base = [(end - week - w, end - week), (end - 2 * week - w, end - 2 * week)]
        if large:
            lf, ldims, loc = _localize_large(st, sp, spec, obs, base, cards, queries,
                                             leaf_budget=1)
        else:
            lv = q_leaves(st.con, sp, spec, obs=obs, base=base)
            queries[f"localized_scan_{span}"] = lv.sql
            lf, ldims = lv.frame, dims
            loc = (localizer or localize)(lf, dimensions=dims, kind=spec.kind,
                                          hierarchies=dict(m.hierarchies))
        for s in [dict(s.filter) for s in loc.slices if dict(s.filter)][:candidates]:
            f = minimal_filter(lf, {k: str(v) for k, v in s.items()}, ldims)
            if f and f not in picks:
                picks.append(f)
    if not picks:
        return None
    cfg = DetectConfig(alpha=(SCAN_ALPHA if window is None else 0.05)
                       / (candidates * len(spans) + len(dims) * 10))
    best = None
    for f in picks:
        ser = metric_series(st.con, sp, spec, filter=f).frame
        x = ser.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        res = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain, config=cfg,
                                window=window, detector=detector)
        if res.significant and res.onset is not None and \
                (best is None or abs(res.score) > abs(best[1].score)) and \
                _share_holds(x, total, res, spec, grain, cfg, window, detector):
            best = (f, res, ser[["ts", "num", "den", "rows", "value"]])
    return best


def _share_holds(x: pd.DataFrame, total, res, spec, grain, cfg, window, detector) -> bool:
    """Does a sum metric's slice also diverge as a share of the whole feed?

    The slice scans run when the total did not diverge. A count or a sum carries
    shocks the whole feed shares (an hour of traffic everywhere above or below
    its baseline, with its own memory); in one slice of dozens they can add up
    to a few percent over days and pass for the slice's own divergence. A slice
    an outside event hit moves against the rest of the feed: its share of the
    total (``num`` over the total's ``num``, a ratio, so the shared shock
    cancels) must diverge at the same level, the same way. Ratio metrics, and
    scans without ``total``, are not gated.
    """
    from ..detect import detect_divergence

    if spec.kind != "sum" or total is None:
        return True
    tot = total["num"].reindex(x.index).astype(float)
    share = pd.DataFrame({"num": x["num"].astype(float), "den": tot.where(tot > 0)},
                         index=x.index)
    sh = detect_divergence(share, kind="ratio", better=spec.better, grain=grain, config=cfg,
                           window=window, detector=detector)
    return bool(sh.significant and sh.onset is not None
                and np.sign(sh.score) == np.sign(res.score))


def _localize_large(st, sp, spec, obs, base, cards: dict, queries: dict, *,
                    scope: dict | None = None, named: set | None = None,
                    leaf_budget: int = LEAF_BUDGET):
    """Localize a window of a large passport in DuckDB (screen, pool, search).

    Returns a leaves frame, its dimensions and the Localization. The frame is
    grouped by the dimensions a slice, the scope or ``named`` mention, plus the
    narrowest others while the product of cardinalities stays within
    ``leaf_budget`` (what the ranking's scope shares and the rate-mix split use).
    """
    from ..localize import localize
    from ..store import leaves as q_leaves
    from ..store import window_rows

    m = sp.manifest
    dims = list(m.all_dimensions)
    src = window_rows(st.con, sp, spec, obs=obs, base=base, filter=scope or None)
    queries["leaves"] = src.sql
    lc = localize(src.relation, dimensions=dims, kind=spec.kind,
                  hierarchies=dict(m.hierarchies), labels=src.labels)
    used = {k for s_ in lc.slices for k in dict(s_.filter)} | set(scope or {}) | set(named or ())
    keep, size = set(used), 1.0
    for d in sorted((d for d in dims if d not in used), key=lambda d: cards[d]):
        if size * max(cards[d], 1) > leaf_budget:
            break
        keep.add(d)
        size *= max(cards[d], 1)
    leaf_dims = [d for d in dims if d in keep]
    if not leaf_dims:  # nothing found and nothing asked for: no leaves needed
        return pd.DataFrame(), leaf_dims, lc
    lf = q_leaves(st.con, sp, spec, obs=obs, base=base, dimensions=leaf_dims).frame
    return lf, leaf_dims, lc


def _level_adjusted(st, sp, spec, lf: pd.DataFrame, dims: list[str], obs, base,
                    data_start) -> pd.DataFrame:
    """Sum baselines moved to each leaf's level just before the onset.

    The baseline of a sum is the same hours in earlier weeks; a leaf whose volume
    drifts (an app version being adopted, a market growing) is then expected at
    its old level, and the drift reads as part of the divergence. Each leaf's
    baseline is scaled by its own drift over two days ending a day before the
    onset (those days against the same days in the base weeks), shrunk towards the
    total's drift with a prior worth ``k`` events: the seasonal naive forecast
    with a level correction (Holt 1957; Hyndman and Athanasopoulos, FPP3 ch. 8).
    """
    from ..store import leaves as q_leaves

    pre_len, gap = pd.Timedelta("48h"), pd.Timedelta("24h")
    onset = obs[0]
    shifts = [onset - b[0] for b in base]
    pre = (onset - gap - pre_len, onset - gap)  # a day clear of an onset estimated late
    pre_base = [(pre[0] - sh, pre[1] - sh) for sh in shifts
                if pre[0] - sh >= data_start and sh >= pre_len + gap]
    if not pre_base or pre[0] < data_start:
        return lf
    pv = q_leaves(st.con, sp, spec, obs=pre, base=pre_base).frame
    if pv.empty:
        return lf
    k = 200.0
    g = float(pv["obs_num"].sum() / max(pv["base_num"].sum(), 1e-12))
    pv = pv.assign(_drift=(pv["obs_num"] + k * g) / (pv["base_num"] + k))[dims + ["_drift"]]
    out = lf.merge(pv, on=dims, how="left")
    d = out.pop("_drift").fillna(g).to_numpy(dtype=float)
    out["base_num"] = out["base_num"].to_numpy(dtype=float) * d
    return out


def _concentration_slice(lf: pd.DataFrame, dims: list[str], kind: str,
                         *, min_share: float = 0.6, min_surprise: float = 0.25) -> dict | None:
    """The single value where a significant divergence concentrates, when the lattice
    search named nothing.

    The search judges each slice against a leaf noise model fitted robustly on the
    median leaf; a root cause covering more than half the leaves (a platform, a
    region) inflates that noise and can end up named nowhere. Then the value
    carrying at least ``min_share`` of the deviation with the largest excess over
    its traffic share (explanatory power minus traffic share, Adtributor's
    surprise in its simplest form, Bhagwan et al. 2014) is reported, marked as such.
    """
    from ..events import leaf_deviation

    if lf is None or lf.empty or not dims:
        return None
    dev = leaf_deviation(lf, kind)
    tot = float(dev.sum())
    if tot == 0.0:
        return None
    vol = (lf["obs_den"] if kind == "ratio" else lf["base_num"]).to_numpy(dtype=float)
    tvol = max(float(vol.sum()), 1e-12)
    best = None
    for d in dims:
        g = pd.DataFrame({"v": lf[d].astype(str).to_numpy(), "dev": dev, "vol": vol})
        agg = g.groupby("v", sort=False)[["dev", "vol"]].sum()
        share, traffic = agg["dev"] / tot, agg["vol"] / tvol
        ok = (share >= min_share) & (share - traffic >= min_surprise) & (traffic < 0.95)
        if not ok.any():
            continue
        v = (share - traffic)[ok].idxmax()
        score = float(share[v] - traffic[v])
        if best is None or score > best[0]:
            best = (score, d, v, float(share[v]))
    if best is None:
        return None
    _, d, v, share = best
    sub = lf[lf[d].astype(str) == v]
    if kind == "ratio":
        base = float(sub["base_num"].sum() / max(sub["base_den"].sum(), 1e-12))
        obs = float(sub["obs_num"].sum() / max(sub["obs_den"].sum(), 1e-12))
    else:
        base, obs = float(sub["base_num"].sum()), float(sub["obs_num"].sum())
    return {"filter": {d: v}, "explained_share": _f(share), "baseline": _f(base),
            "observed": _f(obs), "source": "concentration (no slice passed the lattice "
                                          "search's noise floor)"}


def _change_scope_dims(st, name: str, onset) -> set[str]:
    """Dimensions named by the scopes of changes within two days of the onset."""
    ch = st.changes(name)
    if ch.empty:
        return set()
    near = ch[(ch["ts"] >= onset - pd.Timedelta("48h")) & (ch["ts"] <= onset + pd.Timedelta("24h"))]
    return {k for sc in near["scope"] if isinstance(sc, dict) for k in sc}


def _mix_slices(leaves: pd.DataFrame, dims: list[str], manifest) -> list[dict]:
    """Where the traffic moved: localize the denominator as an additive measure."""
    from ..localize import localize

    den = pd.DataFrame({d: leaves[d] for d in dims})
    den["base_num"] = leaves["base_den"].to_numpy()
    den["obs_num"] = leaves["obs_den"].to_numpy()
    den["base_den"] = 1.0
    den["obs_den"] = 1.0
    loc = localize(den, dimensions=dims, kind="sum", hierarchies=dict(manifest.hierarchies))
    out = []
    for s in loc.slices[:3]:
        f = minimal_filter(leaves, {k: str(v) for k, v in dict(s.filter).items()}, dims)
        tb, to = leaves["base_den"].sum(), leaves["obs_den"].sum()
        out.append({"filter": f, "explained_share": _f(s.explained_share),
                    "baseline": _f(s.baseline / tb if tb else None),
                    "observed": _f(s.observed / to if to else None),
                    "source": "mix: share of traffic"})
    return out


def _fmt_filter(f: dict) -> str:
    return fmt_filter(f, everything="the whole feed")


def _defect_divergence(st, sp, spec, qrep, full_idx, grain, *, detector="seasonal"):
    """The first gap or duplicate whose slice diverges significantly over its window."""
    from ..detect import detect_divergence
    from ..store import metric_series

    for f in qrep.findings:
        if f.check not in ("completeness", "duplicates") or f.start is None:
            continue
        ser = metric_series(st.con, sp, spec, filter=f.slice or None).frame
        x = ser.set_index("ts")[["num", "den", "rows"]].reindex(full_idx)
        if f.check == "completeness" and spec.kind == "sum":
            x.loc[(x.index >= f.start) & (x.index < f.end), ["num", "rows"]] = 0.0
            x.loc[(x.index >= f.start) & (x.index < f.end), "den"] = 1.0
        try:
            d = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain,
                                  window=(f.start, f.end), detector=detector)
        except UsageError:  # a ratio over a gap has no data in its window: nothing to test
            continue
        if d.significant and d.onset is not None:
            return f, d
    return None


def _base_windows(onset, end_excl, data_start, grain) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Same hours one and two weeks earlier when the data has them, else the period before."""
    out = []
    for k in (1, 2, 3):
        off = pd.Timedelta(days=7 * k)
        if onset - off >= data_start and end_excl - off <= onset:
            out.append((onset - off, end_excl - off))
    if not out:
        length = end_excl - onset
        out.append((max(onset - length, data_start), onset))
    return out


def _seasonal_fill(series: pd.DataFrame, weeks=(1, 2, 3)) -> pd.DataFrame:
    """Expected ``num, den`` per bucket from the same bucket in earlier weeks."""
    s = series.set_index("ts")[["num", "den"]]
    parts = [s.shift(freq=pd.Timedelta(days=7 * k)) for k in weeks]
    out = pd.concat(parts).groupby(level=0).mean()
    return out


def _gap_slice(f, slices) -> dict:
    for s in slices:
        if s["filter"] == f.slice:
            return s
    return {"filter": dict(f.slice), "explained_share": 1.0, "baseline": None,
            "observed": None, "source": "data_quality"}


def _div_dict(det) -> dict:
    d = {"onset": _iso(det.onset),
         "window": [_iso(det.onset), _iso(det.end)] if det.onset is not None else None,
         "baseline": _f(det.baseline), "observed": _f(det.observed),
         "relative_change": _f(det.relative_change), "score": _f(det.score),
         "p_value": _f(getattr(det, "p_value", None)),
         "direction": getattr(det, "direction", None),
         "method": getattr(det, "method", None)}
    return d


def _f(x):
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def minimal_filter(leaves: pd.DataFrame, filt: dict, order: list[str] | None = None) -> dict:
    """Drop conditions implied by the others (``browser=app`` given ``platform=ios``).

    A condition is implied when removing it leaves the same set of leaves with
    traffic; the shorter filter names the same slice and reads better.
    """
    from ..events import scope_mask

    active = leaves[(leaves["obs_den"] > 0) | (leaves["base_den"] > 0)] \
        if "obs_den" in leaves else leaves
    cur = dict(filt)
    target = scope_mask(active, cur)
    for k in sorted(filt, key=lambda d: active[d].nunique() if d in active else 0):
        trial = {d: v for d, v in cur.items() if d != k}
        if trial and np.array_equal(scope_mask(active, trial), target):
            cur = trial
    return canonical_filter(active, cur, order)


def canonical_filter(leaves: pd.DataFrame, filt: dict, order: list[str] | None = None) -> dict:
    """Name each condition by the earliest equivalent dimension in ``order``.

    ``app_version=web`` and ``platform=web`` select the same leaves; the
    manifest's dimension order decides which name is shown.
    """
    from ..events import scope_mask

    order = order or list(leaves.columns)
    out = {}
    for d, v in filt.items():
        m = scope_mask(leaves, {d: v})
        best = (d, v)
        for d2 in order:
            if d2 == d or d2 not in leaves or d2 in filt:
                continue
            if order.index(d2) >= (order.index(d) if d in order else len(order)):
                break
            vals = leaves.loc[m, d2].astype(str).unique()
            if len(vals) == 1 and np.array_equal(scope_mask(leaves, {d2: vals[0]}), m):
                best = (d2, str(vals[0]))
                break
        out[best[0]] = best[1]
    return out


def _slices_out(loc, spec, leaves: pd.DataFrame | None = None,
                order: list[str] | None = None) -> list[dict]:
    out = []
    for s in getattr(loc, "slices", ()):
        f = {k: str(v) for k, v in dict(s.filter).items()}
        if leaves is not None:
            f = minimal_filter(leaves, f, order)
        d = {"filter": f,
             "explained_share": _f(s.explained_share), "baseline": _f(s.baseline),
             "observed": _f(s.observed)}
        for extra in ("relative_change", "effect_size", "p_value", "q_value", "confidence",
                      "den_share"):
            if hasattr(s, extra):
                d[extra] = _f(getattr(s, extra))
        out.append(d)
    return out
