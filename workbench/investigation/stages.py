"""The stages of one investigation, over one context: audit, detect, localize, bear, rank, decide.

:func:`analyse` runs them in order. Each stage is a verb of one analysis
package wrapped with what the investigation needs around it, reads the
:class:`Context` (the passport loaded once, one read-only store connection,
the metric, the calendar of the data) and the frozen results of the stages
before it, and returns its own frozen result; the answer's fields are
assembled once, at the end (:func:`assemble`), and nothing is patched after.

1. :func:`audit` - data quality (gaps, duplicates), sample-ratio mismatch and
   late data: the incomplete last buckets of the feed are cut from the context
   before anything is judged (:mod:`workbench.quality.late`), and the answer
   says what may change when they arrive;
2. :func:`detect` - the divergence of the metric and its onset against a
   seasonal baseline (or over the window given); when the total is quiet, a
   defect's slice, then every single-dimension slice, then localized
   conjunctions are scanned (:mod:`.slicing`);
3. :func:`localize` - the slices that explain it, the onset refined on the top
   slice, and for ratios the rate/mix split;
4. :func:`bear` - does the divergence survive repairing the data (gaps filled
   from the seasonal baseline, duplicates removed)?
5. :func:`rank` - the changes of the log against "outside the log"
   (:func:`workbench.events.rank_changes`), re-ranked from the first step of a
   consistent rollout (dose-response), or else from the first step whose
   exposed units diverge;
6. :func:`decide` - the verdict (:func:`workbench.events.verdict.decide_verdict`:
   ``data_quality``, then ``mix_shift``, then ``change`` at confidence >= 0.5
   with an effect of its own, else ``external``), the hypotheses' status
   (:mod:`.hypothesis`) and, asked for, their DoWhy verification.

The 95% onset set is Siegmund's likelihood-ratio confidence set (Siegmund
1988, "Confidence sets in change-point problems").
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .._format import iso as _iso
from .._format import jsonable
from ..passport import Passport
from .hypothesis import as_hypothesis as _as_hypothesis
from .hypothesis import cause_step as _cause_step
from .hypothesis import is_mix_shift as _is_mix_shift
from .hypothesis import next_step as _next_step
from . import slicing
from .slicing import (SCAN_ALPHA, _base_windows, _change_scope_dims,
                      _concentration_slice, _defect_divergence, _div_dict, _f, _fmt_filter,
                      _gap_slice, _level_adjusted, _localize_large, _localized_scan,
                      _mix_slices, _refine_onset, _seasonal_fill, _slice_scan, _slices_out,
                      minimal_filter)

Progress = Callable[[str], None]

__all__ = ["Context", "analyse", "open_context"]


@dataclass(frozen=True)
class Context:
    """What every stage reads.

    ``queries`` and ``timings`` are the run's two ledgers, which stages append
    to: the SQL behind each number of the answer, and the seconds of each step.
    """

    st: Any  # the store, opened read-only once for the whole analysis
    pp: Passport
    sp: Any  # the passport as the store knows it (manifest, tables)
    spec: Any  # the metric's spec
    window: tuple[pd.Timestamp, pd.Timestamp] | None
    say: Progress
    grain: pd.Timedelta
    data_start: pd.Timestamp
    data_last: pd.Timestamp
    full_idx: pd.DatetimeIndex
    series: pd.DataFrame  # the metric's total series
    skipped: tuple[str, ...] = ()
    memory: str | Path | None = None
    memory_asof: str | None = None
    verify: bool = False
    detector: Any = "seasonal"  # a registered name (workbench.detectors), class or object
    localizer: Any = None  # a callable like workbench.localize.localize; None: the built-in
    late: Any = None  # the late tail cut from the series (workbench.quality.late.LateTail)
    hypotheses: tuple = ()  # people's hypotheses (workbench.events.people.PersonHypothesis)
    queries: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def within(self) -> str:
        return "" if self.window is None else " within the window given"


@dataclass(frozen=True)
class Audit:
    report: Any  # workbench.quality.QualityReport
    srm: list
    findings: list  # the report's findings as dicts, then the SRM ones
    late: Any = None  # the incomplete tail of the feed (workbench.quality.late.LateTail)


@dataclass(frozen=True)
class Detection:
    """``kind``: ``total``, ``slice`` (found by a scan), ``defect`` or ``none``."""

    kind: str
    total: Any  # the total's DivergenceResult
    det: Any  # the divergence investigated: the total's, the scan's or the defect slice's
    series: pd.DataFrame  # the series it was found in
    scope: dict
    onset_from: str
    defect: Any = None  # the finding that distorts a slice (kind ``defect``)


@dataclass(frozen=True)
class Localized:
    det: Any
    onset: pd.Timestamp
    end: pd.Timestamp
    obs: tuple
    onset_set: tuple | None
    onset_from: str
    leaves: pd.DataFrame
    leaf_dims: list
    loc: Any
    slices: list
    rate_mix: Any
    params: dict


@dataclass(frozen=True)
class Bearing:
    data_quality: list
    explains: bool  # the divergence does not survive repairing the data
    survive_share: float
    overlapping: list


@dataclass(frozen=True)
class Ranked:
    ranking: Any
    causes: list
    onset: pd.Timestamp
    onset_from: str
    changes: pd.DataFrame
    sign: float
    params: dict


@dataclass(frozen=True)
class Decision:
    verdict: str
    onset: pd.Timestamp
    onset_from: str
    slices: list
    causes: list
    verification: Any


def open_context(st, pp: Passport, spec, window, say: Progress, timings: dict, *,
                 skipped=(), memory=None, memory_asof: str | None = None,
                 verify: bool = False, detector: Any = None, localizer: Any = None,
                 hypotheses=()) -> Context:
    """The context of one analysis: the metric's series and the calendar, read once.

    ``detector`` and ``localizer`` are plug-ins of ``workbench.detectors`` and
    ``workbench.localizers`` (a registered name, or the object itself); None:
    the built-ins (``seasonal``, ``search``).
    """
    from ..detect import resolve_detector
    from ..store import metric_series, time_range

    detector = "seasonal" if detector is None else detector
    resolve_detector(detector)  # an unknown name fails here, with the names available
    localizer = resolve_localizer(localizer)

    sp = st.passport(pp.name)
    grain = sp.manifest.grain_td
    if hypotheses:  # a slice on a dimension the passport lacks fails before any work
        from ..events.people import check_dimensions

        check_dimensions(hypotheses, sp.manifest.all_dimensions)
    t = time.perf_counter()
    ser = metric_series(st.con, sp, spec)
    data_start, data_last = time_range(st.con, sp)
    timings["series"] = time.perf_counter() - t
    full_idx = pd.date_range(data_start.floor(grain), data_last.floor(grain), freq=grain)
    return Context(st=st, pp=pp, sp=sp, spec=spec, window=window, say=say, grain=grain,
                   data_start=data_start, data_last=data_last, full_idx=full_idx,
                   series=ser.frame, skipped=tuple(skipped), memory=memory,
                   memory_asof=memory_asof, verify=verify, detector=detector,
                   localizer=localizer, queries={"metric_series": ser.sql}, timings=timings,
                   hypotheses=tuple(hypotheses or ()))


def resolve_localizer(localizer: Any):
    """None (the built-in search), a callable, or a name of ``workbench.localizers``."""
    if localizer is None or callable(localizer):
        return localizer
    from .. import registry
    from ..errors import UsageError

    try:
        return registry.get_plugin("workbench.localizers", str(localizer))
    except UsageError:
        names = [p.name for p in registry.list_plugins("workbench.localizers") if p.ok]
        raise UsageError(f"unknown localizer {localizer!r}; available: "
                         f"{', '.join(names)}") from None


def _timed(ctx: Context, name: str, t0: float) -> None:
    ctx.timings[name] = time.perf_counter() - t0


# --------------------------------------------------------------------------- 1. audit
def audit(ctx: Context) -> Audit:
    from ..quality import audit_quality
    from ..quality.late import incomplete_tail

    t = time.perf_counter()
    ctx.say("auditing data quality (gaps, duplicates)")
    qrep = audit_quality(ctx.st.con, ctx.sp, skipped_batches=list(ctx.skipped))
    late = incomplete_tail(ctx.series, ctx.grain)
    _timed(ctx, "quality", t)
    srm = _srm_findings(ctx.pp)
    return Audit(qrep, srm, [f.to_dict() for f in qrep.findings] + srm, late)


def without_late_tail(ctx: Context, late) -> Context:
    """The context with the late tail cut: its buckets are not judged until they arrive.

    ``late`` is :attr:`Audit.late`; ``ctx`` itself when the feed is complete.
    The series, the last bucket of the data and the calendar all end before
    the tail; the context remembers the tail for the answer.
    """
    if late is None:
        return ctx
    data_last = min(ctx.data_last, late.start - ctx.grain)
    series = ctx.series[ctx.series["ts"] < late.start].reset_index(drop=True)
    full_idx = pd.date_range(ctx.data_start.floor(ctx.grain), data_last.floor(ctx.grain),
                             freq=ctx.grain)
    ctx.say(f"late data: the buckets from {_iso(late.start)} are incomplete and not judged")
    return replace(ctx, series=series, data_last=data_last, full_idx=full_idx, late=late)


# --------------------------------------------------------------------------- 2. detect
def detect(ctx: Context, au: Audit) -> Detection:
    from ..detect import DetectConfig, detect_divergence

    st, sp, spec, grain, win = ctx.st, ctx.sp, ctx.spec, ctx.grain, ctx.window
    t = time.perf_counter()
    ctx.say("detecting the divergence against the seasonal baseline")
    det_in = ctx.series.set_index("ts")[["num", "den", "rows"]].reindex(ctx.full_idx)
    # Scanning for an unknown onset is held to a stricter level than testing a
    # window the user named: three looks (total, single slices, conjunctions)
    # at SCAN_ALPHA keep quiet passports quiet (benchmarks/detection.py).
    det = detect_divergence(det_in, kind=spec.kind, better=spec.better, grain=grain, window=win,
                            config=DetectConfig(alpha=SCAN_ALPHA if win is None else 0.05),
                            detector=ctx.detector)
    _timed(ctx, "detect", t)
    if det.significant and det.onset is not None:
        return Detection("total", det, det, ctx.series, {}, "scan of the total" + ctx.within)
    # Nothing diverged in total; a defect can still distort a slice badly enough
    # to mislead anyone reading it. Test each defect's slice over its window.
    hit = _defect_divergence(st, sp, spec, au.report, ctx.full_idx, grain, detector=ctx.detector)
    if hit is not None:
        f, det_f = hit
        ctx.say(f"no divergence in total; {f.check} distorts {_fmt_filter(f.slice)}")
        return Detection("defect", det, det_f, ctx.series, dict(f.slice), "", defect=f)
    ctx.say("no divergence in total; scanning every dimension value")
    t = time.perf_counter()
    found = _slice_scan(st, sp, spec, ctx.full_idx, grain, ctx.queries, window=win,
                        detector=ctx.detector, total=det_in)
    if found is None:
        found = _localized_scan(st, sp, spec, ctx.full_idx, grain, ctx.queries, window=win,
                                detector=ctx.detector, localizer=ctx.localizer, total=det_in)
    if found is None:
        found = _change_scope_test(ctx)
    _timed(ctx, "slice_scan", t)
    if found is None:
        ctx.say("no significant divergence")
        return Detection("none", det, det, ctx.series, {}, "")
    scope, det_s, series = found
    ctx.say(f"divergence in {_fmt_filter(scope)} (score {det_s.score:.1f})")
    return Detection("slice", det, det_s, series, scope,
                     f"scan of {_fmt_filter(scope)}" + ctx.within)


def _change_scope_test(ctx: Context):
    """``(scope, det, series)`` from a targeted test of the recent changes' scopes, or None.

    The blind scans found nothing; the change log names where and when to look
    (:func:`workbench.detect.scopes.scope_hits`). The named scope is then tested
    over the window from the change on, as a window the user named would be.
    """
    from ..detect import DetectConfig, detect_divergence
    from ..detect.scopes import scope_hits
    from ..store import metric_panel, metric_series

    if ctx.window is not None:
        return None
    st, sp, spec, grain = ctx.st, ctx.sp, ctx.spec, ctx.grain
    hits = scope_hits(st.changes(ctx.pp.name),
                      lambda scopes, a, b: metric_panel(st.con, sp, spec, scopes, start=a,
                                                        end=b).frame,
                      kind=spec.kind, grain=grain, data_end=ctx.data_last)
    # clearest first; a scope holding the rest of a diverging slice mirrors its drop, the
    # window rejects it and the next is tried (each passed the family-wise level)
    for hit in hits[:3]:
        series = metric_series(st.con, sp, spec, filter=hit.scope).frame
        x = series.set_index("ts")[["num", "den", "rows"]].reindex(ctx.full_idx)
        det = detect_divergence(x, kind=spec.kind, better=spec.better, grain=grain,
                                window=(hit.ts, ctx.data_last), config=DetectConfig(alpha=0.05),
                                detector=ctx.detector)
        # the window must diverge the way the change's comparison did: else the test the
        # change named found something else than the change's effect
        if not (det.significant and det.onset is not None) or \
                np.sign(det.score) != np.sign(hit.t_stat):
            continue
        # The window's statistics run from the change; its onset is the change's time, a
        # time named before looking (a small step's likelihood is too flat to re-date it)
        det = replace(det, onset=hit.ts, params={**det.params, "onset_set": None,
                                                 "onset_from_change": hit.change_id,
                                                 "scope_tests": hit.n_tests})
        ctx.say(hit.describe())
        return hit.scope, det, series
    return None


def _scope_hit_holds(ctx: Context, dn: Detection, rk: Ranked) -> bool:
    """Does a divergence found only through a change's scope keep that change's effect?

    :func:`workbench.detect.scopes.scope_confirmed`; else nothing diverged.
    """
    from ..detect.scopes import scope_confirmed

    n = dn.det.params.get("scope_tests") if dn.kind == "slice" else None
    if not n:
        return True
    named = dn.det.params.get("onset_from_change")
    ok, t, need = scope_confirmed(n, named, dn.scope, rk.ranking.causes, rk.sign,
                                  getattr(rk.ranking, "dose", None))
    if not ok:
        ctx.say(f"not confirmed: {named}'s effect (t = {t:.1f} in the divergence's direction) "
                f"does not clear |t| >= {need:.1f} for the {n} changes the targeted test "
                "looked at")
    return ok


# --------------------------------------------------------------------------- 3. localize
def localize(ctx: Context, dn: Detection) -> Localized:
    from ..detect import detect_divergence
    from ..detect.scopes import whole_scope_moved
    from ..events import scope_mask
    from ..localize import decompose_rate_mix
    from ..localize import localize as localize_slices
    from ..store import cardinalities, metric_panel
    from ..store import leaves as q_leaves

    st, sp, spec, grain, queries = ctx.st, ctx.sp, ctx.spec, ctx.grain, ctx.queries
    m = sp.manifest
    det, scope, onset_from, params = dn.det, dn.scope, dn.onset_from, {}
    onset_set = det.params.get("onset_set")
    onset, end = pd.Timestamp(det.onset), pd.Timestamp(det.end)
    obs = (onset, end + grain)
    base = _base_windows(onset, obs[1], ctx.data_start, grain)

    t = time.perf_counter()
    ctx.say(f"localizing: onset {_iso(onset)}, window to {_iso(end)}")
    dims = list(m.all_dimensions)
    # Unit-level facts with wide dimensions (user ids, SKUs) have millions of
    # leaves: the localizer then screens and pools in DuckDB (window_rows), and
    # the leaves the ranking and the rate-mix split need are grouped over the
    # narrow dimensions plus any a slice or a candidate change names.
    cards = cardinalities(st.con, sp, dims)
    large = float(np.prod([max(c, 1) for c in cards.values()], dtype=float)) > \
        slicing.LARGE_LEAVES
    scoped_dims = _change_scope_dims(st, ctx.pp.name, onset) if large else set()
    leaf_dims = dims

    def _localize_window(obs, base):
        nonlocal leaf_dims
        if large:  # the scope is applied in DuckDB; slices come out inside it
            lf, leaf_dims, lc = _localize_large(st, sp, spec, obs, base, cards, queries,
                                                scope=scope, named=scoped_dims)
            out = _slices_out(lc, spec, lf, leaf_dims)
        else:
            lv = q_leaves(st.con, sp, spec, obs=obs, base=base)
            queries["leaves"] = lv.sql
            lf = lv.frame
            if spec.kind == "sum":
                lf = _level_adjusted(st, sp, spec, lf, dims, obs, base, ctx.data_start)
            # found in a slice: explain within it
            inside = lf[scope_mask(lf, scope)].reset_index(drop=True) if scope else lf
            lc = (ctx.localizer or localize_slices)(inside, dimensions=dims, kind=spec.kind,
                                                    hierarchies=dict(m.hierarchies))
            out = _slices_out(lc, spec, inside, dims)
        if scope:  # then name the slices within the scope
            for sl in out:
                sl["filter"] = minimal_filter(lf, {**scope, **sl["filter"]}, leaf_dims)
            if not out or whole_scope_moved(  # the scope itself first: all of it moved
                    lambda s, a, b: metric_panel(st.con, sp, spec, s, start=a, end=b).frame,
                    scope, out, onset, obs[1], spec.kind, det.score):
                out = [{"filter": dict(scope), "explained_share": 1.0,
                        "baseline": _f(det.baseline), "observed": _f(det.observed)}] + out
        elif not out:
            conc = _concentration_slice(lf, leaf_dims, spec.kind)
            out = [conc] if conc is not None else []
        return lf, lc, out

    leaves, loc, slices = _localize_window(obs, base)
    # The top slice carries the signal undiluted: its onset is sharper than the
    # total's. Re-estimate there and, if it moved, localize again on that window.
    # (not for a mix shift: its slices' rates did not move, a bump in one of them is noise)
    mix_first = spec.kind == "ratio" and not scope and _is_mix_shift(
        decompose_rate_mix(leaves, dimensions=list(leaf_dims)))
    refined = None if mix_first or det.params.get("onset_from_change") else _refine_onset(
        st, sp, spec, slices, ctx.full_idx, grain, det, detector=ctx.detector)
    if refined is not None:
        onset_set = refined.params.get("onset_set")
        onset_from = f"scan of the top slice {_fmt_filter(slices[0]['filter'])}"
        onset, end = pd.Timestamp(refined.onset), pd.Timestamp(refined.end)
        ctx.say(f"onset refined on the top slice: {_iso(onset)} .. {_iso(end)}")
        obs = (onset, end + grain)
        base = _base_windows(onset, obs[1], ctx.data_start, grain)
        params["onset_refined_on"] = slices[0]["filter"] if slices else None
        leaves, loc, slices = _localize_window(obs, base)
        # the total over the refined window (the numbers the answer reports)
        src = dn.series.set_index("ts")[["num", "den", "rows"]].reindex(ctx.full_idx)
        det = detect_divergence(src, kind=spec.kind, better=spec.better, grain=grain,
                                window=obs, detector=ctx.detector)
    rm = None
    if spec.kind == "ratio":
        # the divergence's own population: inside the scope it was found in
        pop = leaves[scope_mask(leaves, scope)].reset_index(drop=True) if scope else leaves
        rm = decompose_rate_mix(pop, dimensions=[d for d in leaf_dims if d not in scope])
    _timed(ctx, "localize", t)
    return Localized(det, onset, end, obs, onset_set, onset_from, leaves, list(leaf_dims), loc,
                     slices, rm, params)


# --------------------------------------------------------------------------- 4. bear
def bear(ctx: Context, au: Audit, dn: Detection, lz: Localized) -> Bearing:
    """Does the divergence survive repairing the data? Each overlapping finding says."""
    from ..detect import detect_divergence
    from ..quality import correct_series
    from ..store import metric_series

    st, sp, spec, grain, qrep = ctx.st, ctx.sp, ctx.spec, ctx.grain, au.report
    onset, obs, det = lz.onset, lz.obs, lz.det
    t = time.perf_counter()
    overlapping = [f for f in qrep.findings if f.check in ("completeness", "duplicates")
                   and f.start is not None and f.start < obs[1] + grain and f.end > onset - grain]
    dq_verdict, survive_share = False, 1.0
    data_quality = [f.to_dict() for f in qrep.findings]
    if overlapping:
        fills = {}
        for f in overlapping:
            if f.check == "completeness":
                fs = metric_series(st.con, sp, spec, filter=f.slice or None).frame
                fills[(f.start, tuple(sorted(f.slice.items())))] = _seasonal_fill(fs)
        corrected = correct_series(dn.series, qrep, spec, gap_fill=fills)
        cin = corrected.set_index("ts")[["num", "den"]].reindex(ctx.full_idx)
        det2 = detect_divergence(cin, kind=spec.kind, better=spec.better, grain=grain,
                                 window=(onset, obs[1]), detector=ctx.detector)
        det2_free = detect_divergence(cin, kind=spec.kind, better=spec.better, grain=grain,
                                      detector=ctx.detector)
        rc0 = det.relative_change or 0.0
        survive_share = (abs(det2.relative_change) / abs(rc0)) if rc0 else 1.0
        survives = det2_free.significant and det2_free.onset is not None and \
            abs(pd.Timestamp(det2_free.onset) - onset) <= 3 * grain and survive_share > 0.35
        for d, f in zip(data_quality, qrep.findings):
            if f in overlapping:
                what = ("filled from the seasonal baseline" if f.check == "completeness"
                        else "with the duplicates removed")
                if survives:
                    d["bearing"] = (f"overlaps the divergence; {what}, the change in "
                                    f"{spec.name} is {det2.relative_change:+.1%} instead of "
                                    f"{rc0:+.1%}: the divergence is real")
                else:
                    d["bearing"] = (f"explains the divergence: {what}, {spec.name} changes "
                                    f"{det2.relative_change:+.1%} instead of {rc0:+.1%} and "
                                    "no divergence remains")
                    d["severity"] = "error"
        dq_verdict = not survives
    data_quality += au.srm
    _timed(ctx, "quality_bearing", t)
    return Bearing(data_quality, dq_verdict, survive_share, overlapping)


# --------------------------------------------------------------------------- 5. rank
def rank(ctx: Context, dn: Detection, lz: Localized) -> Ranked:
    from ..events import rank_changes
    from ..events.people import origin_of, with_people
    from ..store import metric_panel, metric_series

    st, sp, spec, grain, queries = ctx.st, ctx.sp, ctx.spec, ctx.grain, ctx.queries
    det, onset, end, obs, scope = lz.det, lz.onset, lz.end, lz.obs, dn.scope
    leaves, slices, onset_from, params = lz.leaves, lz.slices, lz.onset_from, {}
    t = time.perf_counter()
    ctx.say("ranking changes near the onset")
    changes = with_people(st.changes(ctx.pp.name), ctx.hypotheses)  # each row has an origin
    sign = float(np.sign((det.observed or 0) - (det.baseline or 0))) or -1.0

    s_start, s_end = onset - pd.Timedelta("15D"), obs[1]
    s_cache: dict = {}

    def series_fn(filt: dict, negate: bool) -> pd.DataFrame:
        # One query per scope: the unexposed group is the total minus the exposed
        # one (sums are additive), so each change costs one scan, and a scope
        # shared by several changes costs one scan in all.
        key = tuple(sorted((k, str(v)) for k, v in (filt or {}).items()))
        if key not in s_cache:
            s_cache[key] = metric_series(st.con, sp, spec, filter=filt or None,
                                         start=s_start, end=s_end).frame
        ex = s_cache[key]
        if not negate:
            return ex
        if () not in s_cache:
            s_cache[()] = metric_series(st.con, sp, spec, start=s_start, end=s_end).frame
        tot = s_cache[()].set_index("ts")[["num", "den", "rows"]]
        un = tot.sub(ex.set_index("ts")[["num", "den", "rows"]].reindex(tot.index).fillna(0.0))
        un = un[un["rows"] > 0].reset_index()
        un["value"] = un["num"] / un["den"] if spec.kind == "ratio" else un["num"]
        return un

    def panel_fn(scopes: list, start, stop) -> pd.DataFrame:
        r = metric_panel(st.con, sp, spec, scopes, start=start, end=stop)
        queries["joint_panel"] = r.sql
        return r.frame

    prior = None
    if ctx.memory is not None and Path(ctx.memory).is_file():
        from .library.memory import prior_evidence

        onset_iso, direction = _iso(onset), ("drop" if sign < 0 else "rise")

        def prior(change):  # resolved past investigations as prior log-odds, shown as such
            return prior_evidence(ctx.memory, metric=spec.name, slices=slices, candidate=change,
                                  direction=direction, passport=ctx.pp.name, onset=onset_iso,
                                  asof=ctx.memory_asof)

    ranking = rank_changes(changes, onset=onset, end=end, grain=grain, kind=spec.kind,
                           direction_sign=sign, leaves=leaves, top_slices=slices,
                           series=series_fn, data_end=ctx.data_last, focus=scope or None,
                           prior=prior, panel=panel_fn, onset_set=lz.onset_set)
    _timed(ctx, "rank", t)
    first = _first_dose(getattr(ranking, "dose", None), sign, grain)
    if first is not None and first[0] < onset:
        ctx.say(f"dose-response: the divergence began with the {first[2]} {_iso(first[0])}")
        onset = first[0]
        onset_from = f"{first[2]} ({first[1]})"
        params["onset_from_first_dose"] = first[1]
        # rank again from the first dose: the ramp's first row is now aligned
        ranking = rank_changes(changes, onset=onset, end=end, grain=grain, kind=spec.kind,
                               direction_sign=sign, leaves=leaves, top_slices=slices,
                               series=series_fn, data_end=ctx.data_last, focus=scope or None,
                               prior=prior, panel=panel_fn)
    origin = origin_of(changes)
    causes = [{**c.to_dict(), "origin": origin.get(c.change_id, "change_log")}
              for c in ranking.causes]
    return Ranked(ranking, causes, onset, onset_from, changes, sign, params)


def _first_dose(dose, sign: float, grain: pd.Timedelta):
    """``(time, change_id, what)`` of the rollout step that dates the divergence, or None.

    A dose-response that follows the exposure dates the ramp from its first
    step; otherwise the first step whose exposed units diverge does.
    """
    if dose is None:
        return None
    if dose.consistent:
        return dose.first_step, dose.first_step_id, "first step of the rollout"
    hit = dose.first_diverging(sign, grain)
    return None if not hit else (*hit, "first rollout step whose exposed units diverge")


# --------------------------------------------------------------------------- 6. decide
def decide(ctx: Context, lz: Localized, br: Bearing, rk: Ranked) -> Decision:
    """The verdict, the causes' confidence under it, their hypothesis fields, verification."""
    from ..events.verdict import decide_verdict

    grain, rm, ranking = ctx.grain, lz.rate_mix, rk.ranking
    onset, onset_from, onset_set = rk.onset, rk.onset_from, lz.onset_set
    slices, causes, overlapping = list(lz.slices), rk.causes, br.overlapping
    mix_share = float(rm.mix_share) if rm is not None else 0.0
    if br.explains:
        verdict = "data_quality"
        scale = min(br.survive_share, 1.0)
        # the defect explains the divergence: it began when the defect did (a gap at
        # night shows in the total only once the slice's volume makes it visible)
        starts = [f.start for f in overlapping if f.start is not None and
                  onset - pd.Timedelta("24h") <= f.start < onset]
        if starts:
            onset = min(starts)
            onset_from = "start of the data-quality defect that explains it"
        gap = next((f for f in overlapping if f.slice), None)
        if gap is not None:
            slices = [_gap_slice(gap, slices)] + [s for s in slices if s["filter"] != gap.slice]
    else:
        # a person's hypothesis is never a change: the verdict reads the log's top cause
        top_log = next((c for c in causes if c.get("origin") != "person"), None)
        verdict = decide_verdict(data_quality_explains=False,
                                 strict_mix=rm is not None and _is_mix_shift(rm), rm=rm,
                                 divergence_sign=rk.sign,
                                 top=top_log if causes and top_log is causes[0] else None,
                                 causes=[c for c in causes if c.get("origin") != "person"])
        scale = 1.0
        if verdict == "mix_shift":
            scale = max(0.0, min(1.0, 1.0 - mix_share))
            slices = _mix_slices(lz.leaves, lz.leaf_dims, ctx.sp.manifest) + slices
    if verdict != "change":
        for c in causes:
            if c.get("origin") == "person":  # the contract caps it; the ranking keeps it
                c["posterior"] = c["confidence"]
            c["confidence"] = round(min(c["confidence"] * scale, 0.49), 4)
            if scale < 1.0:
                c["evidence"] = c["evidence"] + [
                    f"confidence scaled by {scale:.2f}: the verdict is {verdict}"]
    causes.sort(key=lambda c: -c["confidence"])
    # A change the evidence names as the cause, at a time the data cannot tell from
    # the scan's onset (inside its 95% set), dates the divergence: the scan's own
    # estimate wanders inside a flat likelihood (a night, a small slice), the
    # change's time does not. Ranked first, then dated, so the dating adds no blame.
    # A change without an effect of its own (its siblings moved alike) dates nothing.
    late = getattr(ranking, "effect_onset", None)  # the top cause acted hours after it landed
    if verdict == "change" and causes and late is not None and ranking.top is not None \
            and causes[0]["change_id"] == ranking.top.change_id:
        onset, onset_from = late.start, (f"start of {causes[0]['change_id']}'s own effect, "
                                         f"{late.delay_grains} grain(s) after it")
    elif verdict == "change" and causes and onset_set and onset_from.startswith("scan") \
            and ranking.aligned is not None and causes[0].get("own_effect") is not False:
        t_top = pd.Timestamp(causes[0]["ts"]).floor(grain)
        s_lo, s_hi = ranking.aligned  # as far as the ranking aligned changes
        # (one grain of slack: the set's edges fall between buckets)
        if s_lo - grain <= t_top <= s_hi + grain and t_top != onset:
            onset_from = (f"time of {causes[0]['change_id']}, inside the 95% set of the "
                          f"{onset_from}")
            causes[0]["evidence"] = list(causes[0]["evidence"]) + [
                f"the divergence is dated from this change: the scan put the onset at "
                f"{_iso(onset)}, and the data alone allow {_iso(onset_set[0])} .. "
                f"{_iso(onset_set[1])}"]
            onset = t_top
    for c in causes:
        _as_hypothesis(c, ctx.spec.name, slices)
    if verdict == "external" and causes:
        from ..events.people import support_person

        support_person(causes[0], _cause_step)
    verification = None
    if ctx.verify and causes and verdict in ("change", "external"):
        verification = _verify_causes(ctx, causes, onset=onset, end=lz.end, sign=rk.sign,
                                      slices=slices, changes=rk.changes)
    return Decision(verdict, onset, onset_from, slices, causes, verification)


def _verify_causes(ctx: Context, causes: list[dict], *, onset, end, sign, slices: list[dict],
                   changes):
    """DoWhy verification of the top two causes; their evidence and tests gain its lines."""
    from ..causal import available

    if not available():
        ctx.say("DoWhy is not installed (pip install 'workbench[causal]'): causes not verified")
        return None
    from ..causal import verify_top_causes

    t = time.perf_counter()
    ctx.say("verifying the top causes with DoWhy (estimate, refuters, counterfactual, gcm)")
    rep = verify_top_causes(ctx.st.con, ctx.sp, ctx.spec, causes[:2], onset=onset, end=end,
                            grain=ctx.grain, direction=sign, graph=ctx.pp.graph,
                            changes=changes, slice=slices[0]["filter"] if slices else None)
    for c in causes:
        v = rep.by_id(c["change_id"])
        if v is None:
            continue
        c["verification"] = v.verdict
        c["evidence"] = c["evidence"] + rep.evidence_for(c["change_id"])
        c.setdefault("tests", []).append({"test": "DoWhy verification", "result": v.reason})
    _timed(ctx, "verify", t)
    ctx.say("verification: " + ", ".join(f"{k} {v}" for k, v in rep.verdicts.items()))
    return rep


def _srm_findings(pp: Passport) -> list[dict]:
    """Sample-ratio mismatch of the passport's experiments, as quality findings."""
    if pp.experiments is None or len(pp.experiments) == 0:
        return []
    from ..experiments import check_srm

    out = []
    for r in check_srm(pp.experiments):
        out.append({"check": "srm", "severity": "error" if r.mismatch else "info",
                    "detail": r.detail(), "slice": r.worst_slice,
                    "puts_at_risk": ([f"any effect read from experiment {r.experiment}: its "
                                      "assignment or logging is broken"] if r.mismatch else []),
                    "experiment": r.to_dict()})
    return out


def _safe_dict(obj) -> dict:
    return jsonable(obj.to_dict() if hasattr(obj, "to_dict") else dict(obj))


# --------------------------------------------------------------------------- the answer
def _common(ctx: Context, det, params: dict) -> dict:
    late = {} if ctx.late is None else {"late_data": ctx.late.to_dict()}
    return dict(passport=ctx.pp.name, metric=ctx.spec.name, metric_kind=ctx.spec.kind,
                better=ctx.spec.better, queries=ctx.queries, timings=ctx.timings,
                series=ctx.series, detection=det,
                params={"window": None if ctx.window is None else [_iso(w) for w in ctx.window],
                        **late, **params})


def _divergence(ctx: Context, det) -> dict:
    """The divergence's fields, with what late data may change (``late_data``)."""
    div = _div_dict(det)
    if ctx.late is not None:
        div["late_data"] = ctx.late.to_dict()
    return div


def _step(ctx: Context, verdict: str, causes: list, slices: list, dq: list) -> str:
    return _next_step(verdict, causes, slices, dq, late=ctx.late)


def _quiet_answer(ctx: Context, au: Audit, dn: Detection) -> dict:
    """The answer when the total did not diverge and no scan found a slice that did."""
    if dn.kind == "defect":
        f, det_f, spec = dn.defect, dn.det, ctx.spec
        dq = []
        for d, g in zip(au.findings, list(au.report.findings) + [None] * len(au.srm)):
            if g is f:
                d = dict(d, severity="error", bearing=(
                    f"explains a divergence of {spec.name} in "
                    f"{_fmt_filter(f.slice)} ({det_f.relative_change:+.1%} over "
                    f"{f.buckets} buckets); with complete data it would not be there"))
            dq.append(d)
        div = _divergence(ctx, det_f)
        div["scope"] = dict(f.slice)
        slices = [{"filter": dict(f.slice), "explained_share": 1.0,
                   "baseline": _f(det_f.baseline), "observed": _f(det_f.observed),
                   "source": "data_quality"}]
        step = _step(ctx, "data_quality", [], [{"filter": dict(f.slice)}], dq)
        return dict(verdict="data_quality", divergence=div, slices=slices, causes=[],
                    data_quality=dq, rate_mix=None, external=None,
                    **_common(ctx, dn.total, {"next_step": step}))
    step = _step(ctx, "none", [], [], au.findings)
    return dict(verdict="none", divergence=_divergence(ctx, dn.det), slices=[], causes=[],
                data_quality=au.findings, rate_mix=None, external=None,
                **_common(ctx, dn.det, {"next_step": step}))


def assemble(ctx: Context, dn: Detection, lz: Localized, br: Bearing, rk: Ranked,
             dc: Decision) -> dict:
    """Every field of the answer but the store's and the library's, made once."""
    div = _divergence(ctx, lz.det)
    div["onset"], div["window"] = _iso(dc.onset), [_iso(dc.onset), _iso(lz.end)]
    if lz.onset_set:  # the 95% likelihood-ratio set of the scan's onset (Siegmund 1988)
        div["onset_interval"] = [_iso(lz.onset_set[0]), _iso(lz.onset_set[1])]
    div["onset_source"] = dc.onset_from
    if dn.scope:
        div["scope"] = dn.scope
    if rk.ranking.stability is not None:
        div["top_cause_stability"] = rk.ranking.stability
    step = _step(ctx, dc.verdict, dc.causes, dc.slices, br.data_quality)
    from .showsql import attach_sql

    attach_sql(ctx, lz, rk, dc.slices, dc.causes, br.data_quality,  # show me the query
               dc.verification)
    return dict(verdict=dc.verdict, divergence=div, slices=dc.slices, causes=dc.causes,
                data_quality=br.data_quality,
                rate_mix=None if lz.rate_mix is None else _safe_dict(lz.rate_mix),
                external=rk.ranking.external, localization=lz.loc, ranking=rk.ranking,
                verification=dc.verification,
                **_common(ctx, dn.det, {**lz.params, **rk.params, "next_step": step}))


def analyse(ctx: Context) -> dict:
    """Run the stages over ``ctx``; the answer's fields (a dict for ``Investigation``)."""
    au = audit(ctx)
    ctx = without_late_tail(ctx, au.late)
    dn = detect(ctx, au)
    if dn.kind in ("defect", "none"):
        return _quiet_answer(ctx, au, dn)
    lz = localize(ctx, dn)
    br = bear(ctx, au, dn, lz)
    rk = rank(ctx, dn, lz)
    if not _scope_hit_holds(ctx, dn, rk):
        return _quiet_answer(ctx, au, replace(dn, kind="none", det=dn.total))
    dc = decide(ctx, lz, br, rk)
    c = dc.causes
    ctx.say(f"verdict {dc.verdict}; top cause "
            f"{c[0]['change_id'] + ' ' + format(c[0]['confidence'], '.0%') if c else '-'}")
    return assemble(ctx, dn, lz, br, rk, dc)
