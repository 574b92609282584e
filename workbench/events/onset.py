"""When a change's own effect began: a change point in its exposed-minus-unexposed contrast.

Why
---
A change does not always act the hour it lands: a cache expires, a batch job
runs at night, a config is read on the next restart. Dating such a divergence
from the change's timestamp puts the onset hours early (issue 14, held-out
family ``delayed_effect``). The change's own data say when its effect began:
the contrast of its exposed units against the unexposed ones steps at the
effect's start, not at the change.

Method
------
``d_t`` is the log metric of the exposed group minus that of the unexposed
group per bucket (the series of :func:`workbench.events.effects.did_effect`),
with hour-of-day effects absorbed and buckets weighted by the smaller group's
volume. For each candidate start ``k`` from the change's bucket to
``max_lag`` grains after it, a weighted least-squares fit of
``d_t ~ hour-of-day + 1[t >= k]`` over the pre-period and the post-period gives
a residual sum of squares ``RSS(k)``. The start is the least-squares change
point (Bai and Perron 1998; the at-most-one-change case of binary
segmentation, Scott and Knott 1974) restricted to starts at or after the
change. The delay is accepted only when the profile likelihood ratio of the
best start against the change's own bucket,

    LR = n * log(RSS(change) / RSS(best)),

exceeds ``penalty`` (chosen on the tuning families only, where every effect
starts with its change) and the step at the best start points the way of the
divergence. Otherwise the change's time stands.

References
----------
Bai, J. and Perron, P. (1998). Estimating and testing linear models with
multiple structural changes. Econometrica 66(1), 47-78.
Scott, A. J. and Knott, M. (1974). A cluster analysis method for grouping
means in the analysis of variance. Biometrics 30(3), 507-512.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EffectOnset", "delayed_start", "effect_onset", "foreign_step", "late_effect"]


@dataclass(frozen=True)
class EffectOnset:
    """The estimated start of a change's own effect.

    Attributes
    ----------
    start:
        The bucket the effect starts in (the change's bucket when no delay is
        accepted).
    delay_grains:
        Grains between the change's bucket and ``start``.
    lr:
        Profile likelihood ratio of ``start`` against the change's bucket (0
        when they coincide).
    accepted:
        Whether the delay passed the penalty (``False``: ``start`` is the
        change's bucket).
    """

    start: pd.Timestamp
    delay_grains: int
    lr: float
    accepted: bool

    def evidence(self, change_id: str) -> str:
        """One line for the cause's evidence."""
        return (f"its own effect began {self.delay_grains} grain(s) after it "
                f"({self.start:%m-%d %H:%M}; change point of exposed against unexposed, "
                f"likelihood ratio {self.lr:.1f} against the change's own bucket): "
                f"the divergence is dated from there, not from {change_id}")

    def late_evidence(self, max_lag: int) -> str:
        """One line for a change whose exposed units diverged long after it, or before it."""
        when = (f"{-self.delay_grains} grain(s) before it" if self.delay_grains < 0 else
                f"only {self.delay_grains} grain(s) after it")
        why = ("a change does not act before it lands" if self.delay_grains < 0 else
               f"later than a change's effect is dated ({max_lag} grains), and not before")
        return (f"its exposed units diverged {when} ({self.start:%m-%d %H:%M}; change point "
                f"of exposed against unexposed, likelihood ratio {self.lr:.1f} against its own "
                f"bucket): {why}, so that step is not its own effect")


def _contrast(exposed: pd.DataFrame, unexposed: pd.DataFrame, kind: str):
    e, u = exposed.set_index("ts"), unexposed.set_index("ts")
    idx = e.index.intersection(u.index)
    e, u = e.loc[idx], u.loc[idx]
    if kind == "ratio":
        ve, vu = e["num"] / e["den"], u["num"] / u["den"]
        w = np.minimum(e["den"], u["den"]).to_numpy(dtype=float)
    else:
        ve, vu = e["num"], u["num"]
        w = np.ones(len(idx))
    ok = ((ve > 0) & (vu > 0) & np.isfinite(ve) & np.isfinite(vu)).to_numpy()
    d = (np.log(ve[ok]) - np.log(vu[ok])).to_numpy(dtype=float)
    return pd.DatetimeIndex(idx[ok]), d, w[ok]


def effect_onset(exposed: pd.DataFrame, unexposed: pd.DataFrame, change_ts: pd.Timestamp, *,
                 kind: str, grain: pd.Timedelta, direction_sign: float, max_lag: int = 12,
                 penalty: float = 12.0) -> EffectOnset | None:
    """Estimate when a change's effect started, at or after the change.

    Parameters
    ----------
    exposed, unexposed:
        ``ts, num, den`` per bucket for the change's scope and for the rest,
        covering a pre-period before the change and the divergence after it.
    change_ts:
        The change's bucket (floored to the grain).
    kind:
        ``"ratio"`` or ``"sum"``.
    grain:
        The bucket length.
    direction_sign:
        Sign of the divergence (-1 for a drop): a delayed step must point that way.
    max_lag:
        Latest start considered, in grains after the change.
    penalty:
        Likelihood-ratio threshold a delay must pass.

    Returns
    -------
    EffectOnset or None
        None when the series are too short to tell.
    """
    prof = _profile(exposed, unexposed, change_ts, kind=kind, grain=grain, max_lag=max_lag)
    if prof is None:
        return None
    t0, starts, rss_a, steps, n = prof
    # only starts whose step points the way of the divergence compete
    valid = steps * direction_sign > 0
    if not valid.any():
        return EffectOnset(t0, 0, 0.0, False)
    best = int(np.argmin(np.where(valid, rss_a, np.inf)))
    lr = float(n * np.log(rss_a[0] / max(rss_a[best], 1e-300)))
    if best == 0 or lr < penalty:
        return EffectOnset(t0, 0, max(lr, 0.0) if best else 0.0, False)
    return EffectOnset(starts[best], best, lr, True)


def _profile(exposed, unexposed, change_ts, *, kind: str, grain: pd.Timedelta,
             max_lag: int | None, lead: int = 0):
    """``(t0, starts, RSS(k), step(k), n)`` of ``d_t ~ hour-of-day + 1[t >= k]`` per start.

    The starts run from ``lead`` grains before the change's bucket to ``max_lag``
    grains after it (every start leaving three buckets when ``None``); the change's
    own bucket is ``starts[lead]``. All fits at once: by Frisch-Waugh-Lovell, the
    step's fit is the regression of the hour-of-day residuals of ``d`` on those of
    each step column, one least-squares solve for every start. ``None`` when the
    series are too short to tell.
    """
    ts, d, w = _contrast(exposed, unexposed, kind)
    t0 = pd.Timestamp(change_ts)
    pre = ts < t0 - lead * grain
    if pre.sum() < 24 or (ts >= t0).sum() < 3:
        return None
    post = ts[ts >= t0]
    last = int((post[-3] - t0) / grain) if len(post) >= 3 else 0
    k_max = last if max_lag is None else min(max_lag, last)
    offsets = np.arange(-lead, max(k_max, 0) + 1, dtype=float)
    starts = [t0 + int(k) * grain for k in offsets]
    hours = pd.get_dummies(ts.hour, prefix="h", drop_first=True, dtype=float).to_numpy()
    sw = np.sqrt(np.maximum(w, 0.0))
    X0 = np.column_stack([np.ones(len(d)), hours]) * sw[:, None]
    since = ((ts - t0) / grain).to_numpy(dtype=float)  # grains after the change's bucket
    S = (since[:, None] >= offsets[None, :]).astype(float) * sw[:, None]
    rhs = np.column_stack([d * sw, S])
    coef, *_ = np.linalg.lstsq(X0, rhs, rcond=None)
    res = rhs - X0 @ coef
    rd, rs = res[:, 0], res[:, 1:]
    ss = np.einsum("ij,ij->j", rs, rs)
    cross = rs.T @ rd
    ok = ss > 1e-12
    steps = np.where(ok, cross / np.where(ok, ss, 1.0), 0.0)
    rss = float(rd @ rd) - np.where(ok, cross ** 2 / np.where(ok, ss, 1.0), 0.0)
    if rss[lead] <= 0:
        return None
    return t0, starts, rss, steps, len(d)


def foreign_step(exposed: pd.DataFrame, unexposed: pd.DataFrame, change_ts: pd.Timestamp, *,
                 kind: str, grain: pd.Timedelta, direction_sign: float, max_lag: int = 12,
                 penalty: float = 12.0, lead: int = 24, slack: int = 1,
                 min_t: float = 1.96) -> EffectOnset | None:
    """The step of a change's contrast when it cannot be the change's effect.

    The contrast's least-squares change point is searched from ``lead`` grains
    before the change to the end of the post-period. Pointing the way of the
    divergence and beating the change's own bucket by the likelihood ratio
    ``penalty`` (as :func:`effect_onset` asks of a delay), it is *foreign* when

    - it lies more than ``slack`` grains *before* the change: the exposed units
      diverged before it landed, and a change does not act before it exists
      (``slack`` allows a log stamped when a deploy finished);
    - or more than ``max_lag`` grains *after* it, and the contrast did not move
      that way between the change and the step (in ``d_t ~ hour-of-day + a 1[t >=
      change] + b 1[t >= step]``, ``a``'s t-statistic in the divergence's
      direction stays below ``min_t``): something happened to the scope later.

    The comparison that measured an effect from the change's time holds that
    step: it is not the change's own effect.

    Returns
    -------
    EffectOnset or None
        ``accepted`` is True and ``delay_grains`` the step's offset from the
        change (negative: before it); ``None`` when the step may be the change's.
    """
    prof = _profile(exposed, unexposed, change_ts, kind=kind, grain=grain, max_lag=None,
                    lead=lead)
    if prof is None:
        prof = _profile(exposed, unexposed, change_ts, kind=kind, grain=grain, max_lag=None)
        lead = 0
    if prof is None:
        return None
    t0, starts, rss, steps, n = prof
    valid = steps * direction_sign > 0
    if not valid.any():
        return None
    best = int(np.argmin(np.where(valid, rss, np.inf)))
    k = best - lead
    lr = float(n * np.log(rss[lead] / max(rss[best], 1e-300)))
    if lr < penalty or -slack <= k <= max_lag:
        return None
    if k > max_lag:
        ts, d, w = _contrast(exposed, unexposed, kind)
        hours = pd.get_dummies(ts.hour, prefix="h", drop_first=True, dtype=float).to_numpy()
        since = ((ts - t0) / grain).to_numpy(dtype=float)
        from statsmodels.regression.linear_model import WLS

        X = np.column_stack([np.ones(len(d)), hours, since >= 0, since >= k]).astype(float)
        t_own = float(WLS(d, X, weights=np.maximum(w, 0.0)).fit().tvalues[-2])
        if np.isfinite(t_own) and direction_sign * t_own >= min_t:
            return None  # the change moved its scope from its own time: the step only adds
    return EffectOnset(starts[best], k, lr, True)


def late_effect(ch, changes: pd.DataFrame, exposed: pd.DataFrame, unexposed: pd.DataFrame, *,
                kind: str, grain: pd.Timedelta, direction_sign: float, max_lag: int,
                penalty: float, min_t: float = 1.96) -> EffectOnset | None:
    """:func:`foreign_step` for a candidate change ``ch`` (a row of the change log).

    A dosed rollout with another dose in the log (same kind, target and scope) is
    left alone: the log explains a step at the other dose, and the ramp's own
    rules (:func:`workbench.events.rank.ramp_effects`) judge it.
    """
    from .siblings import _ramp_key

    key = _ramp_key(ch)
    if key is not None and len(changes):
        doses = changes[((changes["kind"] == ch.kind) & (changes["target"] == ch.target)
                         & (changes["id"] != ch.id)).to_numpy()]
        if any(_ramp_key(r) == key for r in doses.itertuples(index=False)):  # a few rows
            return None
    return foreign_step(exposed, unexposed, pd.Timestamp(ch.ts).floor(grain), kind=kind,
                        grain=grain, direction_sign=direction_sign, max_lag=max_lag,
                        penalty=penalty, min_t=min_t)


def delayed_start(top, series, *, kind: str, grain: pd.Timedelta, cfg, end: pd.Timestamp,
                  direction_sign: float) -> EffectOnset | None:
    """The accepted delayed start of the top cause's own effect, or None.

    ``top`` is a :class:`workbench.events.rank.CandidateCause`, ``series(scope,
    complement)`` its exposed or unexposed series and ``cfg`` the ranking's
    :class:`~workbench.events.rank.RankConfig` (``did_pre``, ``did_post_max``,
    ``delay_max``, ``delay_penalty``).
    """
    t0 = top.ts.floor(grain)
    lo, hi = t0 - cfg.did_pre, min(t0 + cfg.did_post_max, end)
    try:
        ex, un = series(top.scope, False), series(top.scope, True)
        ex = ex[(ex["ts"] >= lo) & (ex["ts"] < hi)]
        un = un[(un["ts"] >= lo) & (un["ts"] < hi)]
        est = effect_onset(ex, un, t0, kind=kind, grain=grain, direction_sign=direction_sign,
                           max_lag=cfg.delay_max, penalty=cfg.delay_penalty)
    except (ValueError, KeyError):
        return None
    return est if est is not None and est.accepted else None
