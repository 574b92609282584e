"""A change's effect against its siblings, and the rule that blame needs an effect of its own.

Why
---
A change scoped to part of a slice that diverged for an outside reason (a flag
for ``region=EU, app_version=5.2`` landing an hour before all of the EU drops)
compared with *everything else* inherits the slice's drop: its exposed units
fell, the unexposed rest of the world did not. The comparison that tells the
two stories apart holds the slice fixed: exposed units against the units that
share the diverging slice but lie outside the change's scope (its *siblings*).
If the siblings fell alike, the slice is the story, not the change.

Method
------
The within-slice contrast is the triple difference (difference-in-difference-
in-differences, Gruber 1994; Olden and Moen 2022): with ``y`` the log metric,

    DDD = [(y_exposed - y_siblings)_post - (y_exposed - y_siblings)_pre]

where exposed and siblings both lie in the diverging slice ``S``, and the
plain difference-in-differences compares exposed with everything outside the
scope. Writing the outside as siblings plus the rest of the world, the plain
estimate is the DDD plus the slice's own shock; the DDD removes the shock that
hit ``S`` as a whole. The siblings are the synthetic control *within the slice*
(Abadie, Diamond and Hainmueller 2010) with equal weights: units exposed to the
same outside event and not to the change. The estimate is the event-study
regression of :func:`workbench.events.effects.did_effect` (hour-of-day effects,
HAC errors, a lead term), run on exposed against siblings.

The rule (issue 14): a change is credited only with an *own effect*: its
effect against the right comparison (the siblings when its scope is nested in
a diverging slice, else the unexposed rest) in the direction of the divergence
with a 95% interval excluding zero; and it holds at least ``min_own_share`` of
the divergence unless the credible changes (an own effect and a score above
"outside the log") together explain at least ``min_explained``. A change without one cannot score above "outside the log"
less ``cap_below_external``; the onset is never dated from it.

References
----------
Gruber, J. (1994). The incidence of mandated maternity benefits. American
Economic Review 84(3), 622-641.
Olden, A. and Moen, J. (2022). The triple difference estimator. Econometrics
Journal 25(3), 531-553.
Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods
for comparative case studies. JASA 105(490), 493-505.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .effects import EffectEstimate, did_effect, scope_mask



@dataclass(frozen=True)
class OwnEffectRule:
    """Constants of the own-effect rule, chosen on the tuning families only.

    Attributes
    ----------
    min_t:
        ``|t|`` an effect needs, in the direction of the divergence (1.96: a
        95% interval that excludes zero).
    min_own_share:
        Share of the divergence a change's scope must hold by itself...
    min_explained:
        ... unless the changes with own effects explain at least this much of it
        together (two harmful concurrent changes share the divergence).
    cap_below_external:
        A change without an own effect scores at most "outside the log" minus
        this (log-odds): its confidence stays below ``1 / (1 + e)`` ~ 0.27.
    min_sibling_share:
        The siblings must carry at least this share of the slice's traffic for
        the within-slice comparison (fewer are too noisy to clear anything).
    min_parent_excess:
        When no localized slice strictly holds a scope, a *parent* of the scope
        (the scope less one of its dimensions) is the diverging slice if its
        share of the divergence exceeds its share of traffic by this much.
    """

    min_t: float = 1.96
    min_own_share: float = 0.35
    min_explained: float = 0.6
    cap_below_external: float = 1.0
    min_sibling_share: float = 0.1
    min_parent_excess: float = 0.2


def nesting_slice(leaves: pd.DataFrame, scope_m: np.ndarray, den: np.ndarray,
                  slices: list[dict], focus: dict | None,
                  min_sibling_share: float = 0.1) -> dict | None:
    """The smallest diverging slice that strictly contains a scope, or ``None``.

    Candidates are the localized slices and the slice the divergence was found
    in (``focus``). The slice must hold every leaf of the scope and leave at
    least ``min_sibling_share`` of its traffic outside the scope (the siblings).
    """
    if not scope_m.any():
        return None
    cands = [s.get("filter") or {} for s in slices[:3]] + ([focus] if focus else [])
    best, best_den = None, np.inf
    for f in cands:
        if not f:
            continue
        sm = scope_mask(leaves, f)
        if not sm.any() or (scope_m & ~sm).any():
            continue  # the scope is not nested in this slice
        s_den = float(den[sm].sum())
        sib = float(den[sm & ~scope_m].sum())
        if s_den <= 0 or sib < min_sibling_share * s_den:
            continue
        if s_den < best_den:
            best, best_den = dict(f), s_den
    return best


def diverging_parent(leaves: pd.DataFrame, scope: dict, dev: np.ndarray, den: np.ndarray,
                     rule: "OwnEffectRule") -> dict | None:
    """The parent of a scope (the scope less one dimension) that concentrates the divergence.

    Localization can miss the slice a scope is nested in (it names a narrower
    corner of it); the scope's own parents are the other candidates. A parent
    qualifies when its share of the divergence exceeds its share of traffic by
    ``rule.min_parent_excess`` and its siblings carry ``rule.min_sibling_share``
    of its traffic; the one with the largest excess is returned.
    """
    if not scope or len(scope) < 2:
        return None
    total_dev, total_den = float(dev.sum()), float(den.sum())
    if total_dev == 0 or total_den <= 0:
        return None
    scope_m = scope_mask(leaves, scope)
    best, best_x = None, rule.min_parent_excess
    for key in scope:
        parent = {k: v for k, v in scope.items() if k != key}
        pm = scope_mask(leaves, parent)
        p_den = float(den[pm].sum())
        if p_den <= 0 or float(den[pm & ~scope_m].sum()) < rule.min_sibling_share * p_den:
            continue
        excess = float(np.clip(dev[pm].sum() / total_dev, -1, 1)) - p_den / total_den
        if excess >= best_x:
            best, best_x = parent, excess
    return best


def sibling_series(series: Callable[[dict, bool], pd.DataFrame], scope: dict,
                   slice_filter: dict) -> pd.DataFrame:
    """``ts, num, den`` of the siblings: the slice minus the scope (sums are additive)."""
    sl = series(slice_filter, False).set_index("ts")[["num", "den"]]
    ex = series({**slice_filter, **scope}, False).set_index("ts")[["num", "den"]]
    sib = sl.sub(ex.reindex(sl.index).fillna(0.0))
    return sib[(sib["den"] > 0) | (sib["num"] > 0)].reset_index()


def sibling_effect(series: Callable[[dict, bool], pd.DataFrame], scope: dict,
                   slice_filter: dict, change_ts: pd.Timestamp, kind: str,
                   lo: pd.Timestamp, hi: pd.Timestamp):
    """Exposed units against their siblings in ``slice_filter`` around ``change_ts`` (DDD).

    Returns an :class:`~workbench.events.effects.EffectEstimate` (method
    ``ddd-siblings-log-hac``) or ``None`` when too few buckets are comparable.
    """
    ex = series({**slice_filter, **scope}, False)
    sib = sibling_series(series, scope, slice_filter)
    ex = ex[(ex["ts"] >= lo) & (ex["ts"] < hi)]
    sib = sib[(sib["ts"] >= lo) & (sib["ts"] < hi)]
    eff = did_effect(ex, sib, change_ts, kind)
    if eff is None:
        return None
    return EffectEstimate(**{**eff.__dict__, "method": "ddd-siblings-log-hac"})


def against_siblings(series, leaves: pd.DataFrame, m: np.ndarray, den: np.ndarray,
                     slices: list[dict], focus: dict | None, scope: dict,
                     change_ts: pd.Timestamp, kind: str, lo: pd.Timestamp, hi: pd.Timestamp,
                     rule: OwnEffectRule, dev: np.ndarray | None = None,
                     treated: np.ndarray | None = None) -> tuple | None:
    """``(effect, slice)`` of a scoped change against its siblings in the diverging slice
    its scope is nested in, or ``None`` (not nested, no siblings, or too few buckets).

    The slice is the smallest of a localized one (or ``focus``) and, with the
    per-leaf deviation ``dev``, a parent of the scope that concentrates the
    divergence (:func:`diverging_parent`). Siblings that another change treated at the same
    time (``treated``, :func:`co_treated`) are no control: when the untreated
    siblings hold less than ``rule.min_sibling_share`` of the slice, there is no
    comparison within it."""
    if series is None or not scope:
        return None
    sl = nesting_slice(leaves, m, den, slices, focus, rule.min_sibling_share)
    parent = diverging_parent(leaves, scope, dev, den, rule) if dev is not None else None
    # the smallest diverging slice holding the scope: a localized slice wider than a
    # diverging parent (region=EU around country=DE, plan=free while all of DE fell)
    # puts units the outside event missed among the siblings, and the scope inherits
    # the parent's drop again
    if parent is not None and (sl is None or den[scope_mask(leaves, parent)].sum()
                               < den[scope_mask(leaves, sl)].sum()):
        sl = parent
    if sl is None:
        return None
    if treated is not None and treated.any():
        sm = scope_mask(leaves, sl)
        if den[sm & ~m & ~treated].sum() < rule.min_sibling_share * den[sm].sum():
            return None
    try:
        eff = sibling_effect(series, scope, sl, change_ts, kind, lo, hi)
    except (ValueError, KeyError):
        return None
    return None if eff is None else (eff, sl)


def co_treated(cand: pd.DataFrame, leaves: pd.DataFrame, ch, grain: pd.Timedelta,
               near: int = 3) -> np.ndarray | None:
    """Leaves in the scopes of the other scoped changes landing within ``near`` grains
    of ``ch`` (``None``: none did).

    With concurrent treatments a clean control is a unit no treatment reached
    (the never-treated comparison group of Callaway and Sant'Anna 2021, J.
    Econometrics 225(2), 200-230): two harmful flags for iOS and Android "pro"
    users are each other's siblings in the slice "app, pro", and would clear
    each other. Changes to all traffic are left out (they touch every sibling
    alike, and the plain comparison already holds them).
    """
    ts = pd.to_datetime(cand["ts"], utc=True)
    t0 = pd.Timestamp(ch.ts)
    close = cand[((ts - t0).abs() <= near * grain).to_numpy() & (cand["id"] != ch.id).to_numpy()]
    out = None
    for scope in close["scope"]:
        if isinstance(scope, dict) and scope:
            m = scope_mask(leaves, scope)
            out = m if out is None else (out | m)
    return out


def effect_score(effect, direction_sign: float) -> float:
    """The effect feature of the ranking: ``clip(sign * t, -3, 8) / 4`` (0 without a test)."""
    if effect is None:
        return 0.0
    return float(np.clip(direction_sign * effect.t_stat, -3.0, 8.0)) / 4.0


def has_own_effect(effect_feature: float, rule: OwnEffectRule) -> bool:
    """Does the (final) effect feature show an effect whose 95% interval excludes zero?"""
    return effect_feature * 4.0 >= rule.min_t


def sibling_evidence(sib, slice_filter: dict, rule: OwnEffectRule,
                     direction_sign: float) -> str:
    """One evidence line for the within-slice comparison."""
    where = ", ".join(f"{k}={v}" for k, v in slice_filter.items())
    line = (f"against its siblings in {where} (same slice, outside the scope): "
            f"{sib.estimate:+.1%} (95% CI {sib.ci_low:+.1%}..{sib.ci_high:+.1%}, "
            f"t={sib.t_stat:.1f})")
    if direction_sign * sib.t_stat < rule.min_t:
        line += ": the siblings diverged alike, the slice is the story, not the change"
    return line


def _ramp_key(ch) -> str | None:
    """Identity of a dosed rollout (kind, target, scope) for rows with a rollout share."""
    import json

    roll = getattr(ch, "rollout", None)
    if roll is None or (isinstance(roll, float) and np.isnan(roll)):
        return None
    scope = ch.scope if isinstance(ch.scope, dict) else {}
    return f"{ch.kind}|{ch.target}|{json.dumps(scope, sort_keys=True)}"


def apply_own_effect_rule(rows: list, masks: list[np.ndarray], dev: np.ndarray,
                          total_dev: float, rule: OwnEffectRule,
                          external_score: float) -> None:
    """Cap, in place, the score of every scoped candidate without an own effect.

    ``rows`` are the ranking's ``(change, llr, lag, s, c, effect, evidence,
    features)`` tuples after the joint model; ``features["effect"]`` is the final
    effect feature and ``features["prior"]`` the prior log-odds. Global changes
    (no unexposed units, no test) are left to the scope evidence.
    """
    own = []
    ramps: dict[str, bool] = {}  # the rows of one dosed rollout are one intervention
    for ch, llr, lag, s, c, eff, ev, feat in rows:
        scoped = isinstance(ch.scope, dict) and bool(ch.scope)
        has = scoped and (has_own_effect(feat["effect"], rule) or bool(feat.get("ramp_effect")))
        key = _ramp_key(ch)
        if key is not None:
            ramps[key] = ramps.get(key, False) or has
        own.append(has and np.isfinite(llr))
    for i, (ch, llr, *_rest) in enumerate(rows):
        key = _ramp_key(ch)
        if key is not None and ramps.get(key) and np.isfinite(llr):
            own[i] = True  # a later, larger dose shows the ramp's effect
    # what the credible changes explain: an effect of their own and a score above
    # "outside the log" (a change a day early whose comparison holds the shift is not)
    union = np.zeros(len(dev), dtype=bool)
    for m, o, r in zip(masks, own, rows):
        if o and r[1] >= external_score:
            union |= m
    explained = float(dev[union].sum() / total_dev) if total_dev else 0.0
    for i, (ch, llr, lag, s, c, eff, ev, feat) in enumerate(rows):
        scoped = isinstance(ch.scope, dict) and bool(ch.scope)
        if not scoped or not np.isfinite(llr):
            continue
        why = None
        if not own[i]:
            why = ("no effect of its own (its effect's 95% interval includes zero, or it has "
                   "no test)")
        elif s < rule.min_own_share and explained < rule.min_explained:
            why = (f"its scope holds {s:.0%} of the divergence and the changes with effects "
                   f"of their own explain {explained:.0%}: the rest is unexplained")
        cap = external_score - rule.cap_below_external + feat.get("prior", 0.0)
        feat = {**feat, "own_effect": why is None}
        if why is not None and llr > cap:
            llr = cap
            ev = ev + (f"{why}: it cannot rise above its prior",)
        rows[i] = (ch, llr, lag, s, c, eff, ev, feat)


def apply_uniformity_rule(rows: list, *, w_effect: float, external_score: float) -> None:
    """Lower, in place, every global change when a scoped change has an effect of its own.

    A change that touched all traffic (no scope, hence no unexposed units and no
    test of its own) predicts a divergence that is the same for every unit it
    touched. A credible scoped change (an own effect, a score above "outside the
    log") has just measured the opposite: its exposed units diverged and its
    unexposed units -- which the global change touched too -- did not diverge
    alike. That comparison's statistic is the evidence against the uniform
    hypothesis, so each global change loses what the best credible scoped change
    gained from it (``w_effect`` times its effect feature): the likelihood-ratio
    reading of the difference-in-differences, applied to the rival it rejects.
    "Outside the log" keeps its prior (an outside event may hit one slice).

    ``rows`` are the ranking's ``(change, llr, lag, s, c, effect, evidence,
    features)`` tuples after :func:`apply_own_effect_rule`.
    """
    best, who, t_best = 0.0, None, None
    for ch, llr, lag, s, c, eff, ev, feat in rows:
        scoped = isinstance(ch.scope, dict) and bool(ch.scope)
        if scoped and feat.get("own_effect") is True and np.isfinite(llr) \
                and llr >= external_score and feat.get("effect", 0.0) > best:
            best, who = float(feat["effect"]), str(ch.id)
            t_best = None if eff is None else float(eff.t_stat)
    if who is None or best <= 0:
        return
    drop = w_effect * best
    t_txt = "" if t_best is None else f", t={t_best:.1f}"
    for i, (ch, llr, lag, s, c, eff, ev, feat) in enumerate(rows):
        scoped = isinstance(ch.scope, dict) and bool(ch.scope)
        if scoped or not np.isfinite(llr):
            continue
        ev = ev + (f"{who}'s own comparison{t_txt} shows units this change touched outside "
                   f"{who}'s scope did not diverge alike: a change to all traffic does not "
                   f"explain that (-{drop:.1f} log-odds)",)
        rows[i] = (ch, llr - drop, lag, s, c, eff, ev, {**feat, "uniformity_penalty": drop})
