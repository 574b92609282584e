"""Targeted tests at the change log's scopes: small effects a blind scan cannot see.

Why
---
A blind scan tests every slice and every window, and pays for it: the level is
divided among all looks, and the seasonal baseline's own uncertainty widens
every interval. A 2-5% drop in a large slice (issue 14, held-out family
``small_effect``) stays below that bar, although the change that caused it
says exactly where and when to look. The change log is a short list of
pre-specified hypotheses; testing each one is far more powerful than scanning.

Method
------
For every scoped change that landed in the last ``recent`` of the data, the
difference-in-differences of the log metric, exposed against unexposed units,
from the data's whole history (up to ``pre``) to the end of the data
(:func:`workbench.events.effects.did_effect`: hour-of-day effects, HAC
errors), is a z statistic. The unexposed units absorb what moved
everyone (the seasonal pattern, a holiday), so the test needs no baseline
model; a slice that drifts apart from the rest (an app version being adopted)
is not a step, so when the contrast drifts before the change (its pre-period
trend is significant) the step must also pass with a linear trend in the
contrast (a segmented regression, Wagner et al. 2002). The family of tests
is held at level ``alpha`` by Bonferroni's correction over the number of
tests (Dunn 1961); the significant changes, largest ``|t|`` first
(:func:`scope_hits`), name a slice (the scope) and a
window (from the change to the end of the data) that the investigation then
tests and explains in the usual way; the first whose window diverges the same
way is kept (a scope holding the rest of a diverging slice mirrors its drop
against its unexposed units, with the opposite sign, and its window does not).
This is a *detection* step only: the ranking still weighs every change as
before, and blame still needs an effect of its own. The divergence it finds
stands only if the ranking's measure of that scope's effect, with the
concurrent changes held fixed, clears the level corrected for the changes
tested (:func:`scope_confirmed`), and the window must diverge the way the
change's comparison did.

References
----------
Dunn, O. J. (1961). Multiple comparisons among means. JASA 56(293), 52-64.
Wagner, A. K. et al. (2002). Segmented regression analysis of interrupted time
series studies in medication use research. J. Clin. Pharm. Ther. 27, 299-309.
Angrist, J. D. and Pischke, J.-S. (2009). Mostly Harmless Econometrics, ch. 5.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["ScopeHit", "scope_confirmed", "scope_hits", "scope_scan", "whole_scope_moved"]

#: ``panel(scopes, start, end)`` -> ``ts, atom, num, den`` (:func:`workbench.store.metric_panel`)
Panel = Callable[[list, pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass(frozen=True)
class ScopeHit:
    """The change whose scope diverged most clearly after it.

    Attributes
    ----------
    change_id, scope, ts:
        The change, its scope and its bucket.
    t_stat, estimate:
        Its difference-in-differences (relative effect).
    threshold:
        The ``|t|`` every test had to pass (Bonferroni over ``n_tests``).
    n_tests:
        How many (scope, time) pairs were tested.
    """

    change_id: str
    scope: dict
    ts: pd.Timestamp
    t_stat: float
    estimate: float
    threshold: float
    n_tests: int

    def describe(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.scope.items())
        return (f"targeted test of the scope of {self.change_id} ({where}): "
                f"{self.estimate:+.1%} against the unexposed units, t = {self.t_stat:.1f} "
                f"(|t| >= {self.threshold:.1f} for {self.n_tests} changes tested)")


def _chunks(seq: list, k: int):
    for i in range(0, len(seq), k):
        yield seq[i:i + k]


def _contrast(exposed: pd.DataFrame, unexposed: pd.DataFrame, kind: str):
    """``(d, ts, w)``: the log contrast exposed - unexposed per bucket, its times and weights."""
    e, u = exposed.set_index("ts"), unexposed.set_index("ts")
    idx = e.index.intersection(u.index)
    e, u = e.loc[idx], u.loc[idx]
    ve, vu = (e["num"] / e["den"], u["num"] / u["den"]) if kind == "ratio" else \
        (e["num"], u["num"])
    ok = ((ve > 0) & (vu > 0) & np.isfinite(ve) & np.isfinite(vu)).to_numpy()
    d = (np.log(ve[ok]) - np.log(vu[ok])).to_numpy(dtype=float)
    w = np.minimum(e["den"], u["den"]).to_numpy(dtype=float)[ok] if kind == "ratio" else None
    return d, pd.DatetimeIndex(idx[ok]), w


def _hac_t(d: np.ndarray, X: np.ndarray, w: np.ndarray | None, col: int) -> float | None:
    """HAC (Newey-West, 3 lags) t statistic of column ``col`` of a (weighted) regression."""
    from statsmodels.regression import linear_model as sm

    model = sm.WLS(d, X, weights=w) if w is not None else sm.OLS(d, X)
    try:
        fit = model.fit(cov_type="HAC", cov_kwds={"maxlags": 3})
        se = float(np.asarray(fit.bse)[col])
    except (ValueError, np.linalg.LinAlgError):
        return None
    return float(fit.params[col] / se) if np.isfinite(se) and se > 0 else None


def _step_beyond_trend(exposed: pd.DataFrame, unexposed: pd.DataFrame,
                       change_ts: pd.Timestamp, kind: str,
                       pre_trend_t: float = 1.96) -> tuple[bool, float | None]:
    """``(drifts, t)``: does the log contrast drift before the change, and the HAC t of
    the step at ``change_ts`` beyond a linear trend (``None``: too few buckets).

    The trend is tested first on the period before the change alone (the
    event-study check of parallel pre-trends, Angrist and Pischke 2009, 5.2).
    Only a contrast that drifts there (``|t| >= pre_trend_t``) must show its step
    beyond a linear trend over the whole window (a segmented regression, Wagner
    et al. 2002); without a drift the difference-in-differences stands alone,
    since a trend spanning the step absorbs part of it and a real 4% step
    fails (issue 14, ``small_effect``).
    """
    d, ts, w = _contrast(exposed, unexposed, kind)
    if len(d) < 48:
        return True, None
    trend = ((ts - change_ts) / pd.Timedelta("1D")).to_numpy(dtype=float)
    hours = pd.get_dummies(ts.hour, prefix="h", drop_first=True, dtype=float).to_numpy()
    pre = trend < 0
    drift = None
    if pre.sum() >= 48:
        Xp = np.column_stack([np.ones(int(pre.sum())), trend[pre], hours[pre]])
        drift = _hac_t(d[pre], Xp, None if w is None else w[pre], 1)
    drifts = drift is None or abs(drift) >= pre_trend_t
    step = (ts >= change_ts).astype(float)
    return drifts, _hac_t(d, np.column_stack([np.ones(len(d)), step, trend, hours]), w, 1)


def _placebo_rms(ex: pd.DataFrame, un: pd.DataFrame, t0: pd.Timestamp, data_end: pd.Timestamp,
                 kind: str, pre: pd.Timedelta, grain: pd.Timedelta, days: int = 6,
                 min_pre: pd.Timedelta | None = None):
    """Root mean square of the DiD ``t`` at placebo times a day apart before ``t0``.

    Each placebo has the change's post-period length and up to ``pre`` of history
    before it; one with less than ``min_pre`` (default ``pre``) of history is not
    fitted.
    """
    from ..events.effects import did_effect

    post = data_end + grain - t0
    first = ex.index.min()
    need = pre if min_pre is None else min_pre
    ts = []
    for j in range(days):  # one fit per placebo day, not per row
        p = t0 - post - j * pd.Timedelta("1D")
        if p - need < first:
            break
        sel = (ex.index >= p - pre) & (ex.index < p + post)
        e = ex[sel & (ex["den"].to_numpy() > 0)].reset_index()
        u = un[sel & (un["den"].to_numpy() > 0)].reset_index()
        eff = did_effect(e, u, p, kind)
        if eff is not None and np.isfinite(eff.t_stat):
            ts.append(eff.t_stat)
    return float(np.sqrt(np.mean(np.square(ts)))) if len(ts) >= 3 else None


def scope_hits(changes: pd.DataFrame, panel: Panel, *, kind: str, grain: pd.Timedelta,
               data_end: pd.Timestamp, recent: pd.Timedelta = pd.Timedelta("96h"),
               pre: pd.Timedelta = pd.Timedelta("28D"), min_pre: pd.Timedelta = pd.Timedelta("7D"),
               alpha: float = 0.01, min_post: int = 24, placebo_days: int = 6) -> list[ScopeHit]:
    """Test the scope of every recent scoped change; every significant one, clearest first.

    Parameters
    ----------
    changes:
        The change log (``id, ts, scope, ...``).
    panel:
        ``panel(scopes, start, end)``: the metric per atom of up to 16 scopes.
    kind:
        ``"ratio"`` or ``"sum"``.
    grain:
        The bucket length.
    data_end:
        The last bucket of the data.
    recent:
        Changes that landed this long before ``data_end`` (and ``min_post``
        buckets before it at the latest) are tested.
    pre, min_pre:
        The comparison period before each change: the data's history up to
        ``pre``, and at least ``min_pre`` of it (else the change is not tested).
        The whole history rather than a week: the pre-period's mean is one of
        the two terms of the difference-in-differences, and a week of it, set
        against a post-period of one to four days, leaves a third to a half of
        the estimate's variance in the baseline (on the tuning-free development
        seeds of ``small_effect`` the median ``|t|`` of the true change rose from
        4.1 to 5.2 while the ``|t|`` of changes with no effect, on quiet
        passports, kept their spread: root mean square 1.23 and 1.27).
    alpha:
        Family-wise level over all tests.
    min_post:
        Buckets after a change needed to test it (a day: a small step needs
        that long to stand out from persistent hourly noise; on a quiet tuning
        passport an 11-hour window gave t = 4.7 by chance).
    placebo_days:
        Placebo changes, one a day, before the change's post-period: the root
        mean square of their ``|t|`` scales the threshold when above 1 (a
        permutation-style check of the errors, as in Abadie et al. 2010's
        placebo studies).

    Returns
    -------
    list of ScopeHit
        Every change whose test passed, by decreasing ``|t|``. The family is
        held at ``alpha`` whichever of them the caller keeps: Bonferroni bounds
        the chance that *any* change with no effect passes.
    """
    from scipy.stats import norm

    from ..events.effects import did_effect
    from ._baseline import _single_threaded_blas

    if changes is None or len(changes) == 0:
        return []
    ts = pd.to_datetime(changes["ts"], utc=True)
    scoped = changes["scope"].apply(lambda s: isinstance(s, dict) and bool(s))
    keep = scoped & (ts >= data_end - recent) & (ts <= data_end - min_post * grain)
    cand = changes[keep].assign(bucket=ts[keep].dt.floor(grain))
    if cand.empty:
        return []
    # one test per distinct (scope, bucket): a scope changed twice in an hour is one look
    cand = cand.assign(skey=cand["scope"].apply(lambda s: json.dumps(s, sort_keys=True)))
    cand = cand.drop_duplicates(["skey", "bucket"])
    n = len(cand)
    thr = float(norm.isf(alpha / (2 * n)))
    start = cand["bucket"].min() - pre
    scopes = list(dict.fromkeys(cand["skey"]))
    hits = []
    # small fits (hundreds x tens): a multi-threaded BLAS on a busy machine spent
    # seconds waking threads (a quiet passport's 40 fits: 1-3 s instead of 0.4 s)
    with _single_threaded_blas():
        for chunk in _chunks(scopes, 16):
            df = panel([json.loads(k) for k in chunk], start, data_end + grain)
            if df is None or df.empty:
                continue
            tot = df.groupby("ts")[["num", "den"]].sum()
            for bit, key in enumerate(chunk):
                inside = (df["atom"].to_numpy() >> bit) & 1 == 1
                ex = df[inside].groupby("ts")[["num", "den"]].sum().reindex(tot.index).fillna(0.0)
                un = tot - ex
                for row in cand[cand["skey"] == key].itertuples(index=False):
                    if row.bucket - min_pre < tot.index.min():
                        continue  # too little history to compare with
                    sel = (tot.index >= row.bucket - pre)
                    e = ex[sel & (ex["den"].to_numpy() > 0)].reset_index()
                    u = un[sel & (un["den"].to_numpy() > 0)].reset_index()
                    eff = did_effect(e, u, row.bucket, kind)
                    if eff is None or not np.isfinite(eff.t_stat) or abs(eff.t_stat) < thr:
                        continue
                    # a slice drifting apart from the rest (app versions adopted, a plan
                    # growing) is no step: the step must stand beyond the contrast's trend
                    drifts, t_step = _step_beyond_trend(e, u, row.bucket, kind)
                    if drifts and (t_step is None or abs(t_step) < thr
                                   or np.sign(t_step) != np.sign(eff.t_stat)):
                        continue
                    # persistent noise makes HAC errors too small: the same test at placebo
                    # times before the change says how large |t| runs without a change
                    rms = _placebo_rms(ex, un, row.bucket, data_end, kind, pre, grain,
                                       days=placebo_days, min_pre=min_pre)
                    if rms is None or abs(eff.t_stat) < thr * max(1.0, rms):
                        continue
                    hits.append(ScopeHit(str(row.id), json.loads(key), row.bucket,
                                         float(eff.t_stat), float(eff.estimate), thr, n))
    return sorted(hits, key=lambda h: -abs(h.t_stat))


def scope_scan(changes: pd.DataFrame, panel: Panel, **kw) -> ScopeHit | None:
    """The clearest significant change of :func:`scope_hits` (same arguments), or None."""
    hits = scope_hits(changes, panel, **kw)
    return hits[0] if hits else None


def _joint_t(cause) -> float | None:
    """The joint model's ``t`` of a ranked cause, None when not fitted or not identified."""
    j = cause.features.get("joint") or {}
    t = j.get("t_stat") if j.get("identified") else None
    return float(t) if t is not None and np.isfinite(t) else None


def scope_confirmed(n_tests: int, named: str, scope: dict, causes, sign: float, dose=None,
                    alpha: float = 0.05) -> tuple[bool, float, float]:
    """Does the ranking confirm the effect of the scope the targeted test named?

    The targeted test picked the clearest of ``n_tests`` scopes, so the one it
    named is a hypothesis chosen among them, and the window test that followed
    is no independent confirmation (it looks at the same hours of the same
    slice). The ranking measures the change again jointly with the changes
    around it, each holding the others fixed (:mod:`workbench.events.joint`):
    that ``t`` (in the divergence's direction; its own comparison when the
    joint model was not fitted or cannot separate it) of any change on that
    scope, or of any dose of a rollout the named change belongs to, must clear
    the two-sided level ``alpha`` corrected for the ``n_tests`` looks
    (Bonferroni, Dunn 1961), as it would have had to had it been one test
    among them. Not the smaller of it and the ranking's own comparison: that
    comparison is the targeted test's own, re-run on a shorter window (a week
    before, 48 h after), so it adds no check the targeted test (which passed
    ``alpha = 0.01``) did not make, only noise (small_effect dev seed 7900023:
    the targeted test's t = -4.2, the joint model's -5.9, the short re-run's
    -3.0 failed the 3.2 needed). The joint ``t`` alone decides only when another
    member of the joint fit, outside the scope, carries an effect in the
    divergence's direction (``|t| >=`` the ranking's own-effect rule, as in
    :func:`workbench.events.rank` where the joint model then explains the change
    away); otherwise no concurrent change offers another story, the joint fit
    only loses precision to a concurrent change on the same scope (small_effect
    dev seed 8400006: two changes to region=EU 13 h apart split the effect,
    joint t = -2.0, its own comparison -3.8) and the larger of the two stands.
    Either way this is a second gate after the targeted test: it can only
    remove hits, so the family-wise level of the targeted test still holds.

    Parameters
    ----------
    n_tests, named, scope:
        How many scopes the targeted test looked at, the change it named and its scope.
    causes:
        The ranking's :class:`~workbench.events.rank.CandidateCause` list.
    sign:
        The divergence's direction (+1 or -1).
    dose:
        The ranking's :class:`~workbench.events.rank.DoseResponse`, if any.
    alpha:
        Family-wise level.

    Returns
    -------
    (bool, float, float)
        Confirmed, the best ``t`` found and the ``|t|`` needed.
    """
    from scipy.stats import norm

    from ..events.siblings import OwnEffectRule

    ts = [0.0]
    carried = any(_joint_t(c) is not None and sign * _joint_t(c) >= OwnEffectRule().min_t
                  for c in causes if c.scope != scope)
    for c in causes:  # the scope was tested: any change on it may carry the effect
        if c.scope == scope and c.effect is not None:
            jt, own = _joint_t(c), sign * float(c.effect.t_stat)
            # another member carries the effect: the joint model explains this one away;
            # else both measure the scope's own effect and the clearer one stands
            ts.append(own if jt is None else sign * jt if carried else max(own, sign * jt))
    if dose is not None and named in {st["change_id"] for st in dose.steps}:
        ts += [sign * st["t"] for st in dose.steps if st.get("t") is not None]
    need = float(norm.isf(alpha / 2 / n_tests))
    return max(ts) >= need, max(ts), need


def whole_scope_moved(panel: Panel, scope: dict, slices: list[dict], onset: pd.Timestamp,
                      end: pd.Timestamp, kind: str, sign: float,
                      pre: pd.Timedelta = pd.Timedelta("7D")) -> bool:
    """Did a diverging scope move as a whole, not only in the slices named inside it?

    Inside a scope that diverged (a targeted hit, a scanned slice) the
    localization names the sub-slices that explain most of it; with a small
    effect spread evenly over the scope, one of them wins on noise alone
    (small_effect dev seed 8400112: web fell 4.8%, t = -6.7, and the answer's
    top slice was web and plan=free). The part of the scope outside the named
    slices is compared with the traffic outside the scope, from ``onset`` on
    against up to ``pre`` before it
    (:func:`workbench.events.effects.rest_of_scope_moved`): when it moved in
    the divergence's direction as well, the scope itself is the slice to name
    first.

    Parameters
    ----------
    panel:
        ``panel(scopes, start, end)``.
    scope, slices:
        The diverging scope and the slices named inside it (``filter`` each;
        the first three count).
    onset, end:
        The divergence's onset and the end (exclusive) of the data.
    kind, sign:
        ``"ratio"`` or ``"sum"``; the divergence's direction (its sign counts).
    """
    from ..events.effects import rest_of_scope_moved

    named = [sl["filter"] for sl in slices[:3] if sl["filter"] and sl["filter"] != scope]
    return bool(named) and rest_of_scope_moved(panel, scope, named, onset, onset - pre, end,
                                               kind, float(np.sign(sign)))
