"""Rank the changes of the log as candidate causes of a divergence.

Every change in a window around the onset is a hypothesis; so is "something
outside the log" (external). Each change is scored on three kinds of
evidence, and the scores are turned into a posterior over the mutually
exclusive hypotheses "change i caused it" and "none of them did":

1. **Alignment**: how close the change is to the onset, in grains. A change
   that takes effect after the onset cannot have caused it.
2. **Scope**: the share ``s`` of the divergence (per-leaf deviation from the
   baseline) inside the change's scope against the share ``c`` of traffic in
   it. ``s - c`` is large when the scope concentrates the damage. A scope
   broader than what localization found (a global deploy for a drop confined
   to iOS 5.2) is penalized by how much more specific the localization is.
3. **Effect test**: a difference-in-differences between exposed (in scope)
   and unexposed buckets, before and after the change, on the log of the
   metric (relative effect), with heteroskedasticity- and autocorrelation-
   consistent errors (Newey and West 1987; ``statsmodels`` OLS with HAC). See
   Angrist and Pischke, *Mostly Harmless Econometrics* (2009), ch. 5, for DiD
   and event studies.

Log-scores are combined as log-likelihood ratios and normalized against the
external hypothesis, which holds a fixed prior score: when no change carries
evidence, "external" keeps the mass and no change is blamed (the default is
never to blame a change). Weights are set by hand for now and are checked by
``benchmarks/incidents.py`` (false blame, top-1 accuracy); calibration of the
posterior is measured there too.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from .effects import EffectEstimate, did_effect, rest_of_scope_moved, scope_mask
from .joint import joint_adjust
from .onset import EffectOnset, delayed_start, late_effect
from .siblings import (OwnEffectRule, against_siblings, apply_own_effect_rule,
                       apply_uniformity_rule, co_treated, effect_score, has_own_effect,
                       sibling_evidence)

RankSeries = Callable[[dict, bool], pd.DataFrame]
#: ``panel(scopes, start, end)`` -> ``ts, atom, num, den`` (:func:`workbench.store.metric_panel`)
RankPanel = Callable[[list, pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass(frozen=True)
class RankConfig:
    """Weights and windows of the ranking.

    Attributes
    ----------
    lookback:
        Changes up to this long before the onset are candidates.
    lookahead:
        Changes up to this long after the onset are still candidates (the
        onset is estimated to a grain).
    w_align, w_scope, w_effect:
        Log-likelihood weights of each kind of evidence.
    lag_scale:
        Mean delay, in grains, between a change and the onset it causes.
    external_score:
        Log-score of the "outside the log" hypothesis.
    did_pre:
        Length of the pre-period of the difference-in-differences.
    joint_k, joint_window:
        At most ``joint_k`` scoped candidates landing within ``joint_window`` of
        the leading one are fitted jointly (:mod:`workbench.events.joint`).
    delay_max, delay_penalty:
        A top cause's own effect may start up to ``delay_max`` grains after it;
        the delay is accepted when its likelihood ratio passes ``delay_penalty``
        (:func:`workbench.events.onset.effect_onset`; about the 99% point of the
        largest of ``delay_max`` chi-square(1) statistics, Bonferroni). A step of
        a candidate's contrast later than that, or before the change, is not its
        effect (:func:`workbench.events.onset.foreign_step`).
    onset_set_reach:
        How far, in grains, the onset's 95% set may stretch alignment on either
        side of the estimate. A weak divergence has a set spanning a day; a
        change a day early would then be "aligned", and its difference-in-
        differences, whose post-period holds the real shift, would agree.
    rest_check:
        A scope partly outside the diverging slices loses ``(1 - coverage) *
        share`` of its scope score unless the rest of it moved too
        (:func:`workbench.events.effects.rest_of_scope_moved`); tested only when
        that loss is at least this (below, it moves the log-odds by < 0.4).
    """

    lookback: pd.Timedelta = pd.Timedelta("24h")
    lookahead: pd.Timedelta = pd.Timedelta("3h")
    w_align: float = 3.0
    lag_scale: float = 2.0
    w_scope: float = 4.0
    w_effect: float = 2.5
    external_score: float = 3.5
    did_pre: pd.Timedelta = pd.Timedelta("7D")
    did_post_max: pd.Timedelta = pd.Timedelta("48h")
    joint_k: int = 4
    joint_window: pd.Timedelta = pd.Timedelta("24h")
    onset_set_reach: int = 6
    delay_max: int = 12
    delay_penalty: float = 12.0
    own_rule: OwnEffectRule = field(default_factory=OwnEffectRule)
    rest_check: float = 0.1


@dataclass(frozen=True)
class CandidateCause:
    """One change as a hypothesis, with its evidence."""

    change_id: str
    kind: str
    target: str
    ts: pd.Timestamp
    scope: dict
    rollout: float | None
    confidence: float
    lag_grains: float
    scope_share: float
    traffic_share: float
    effect: EffectEstimate | None
    evidence: tuple[str, ...]
    features: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"change_id": self.change_id, "confidence": round(self.confidence, 4),
                "evidence": list(self.evidence), "kind": self.kind, "target": self.target,
                "ts": self.ts.isoformat(), "scope": self.scope,
                "rollout": None if self.rollout is None or np.isnan(self.rollout)
                else float(self.rollout),
                "lag_grains": round(self.lag_grains, 2),
                "scope_share": round(self.scope_share, 4),
                "traffic_share": round(self.traffic_share, 4),
                "effect": None if self.effect is None else self.effect.to_dict(),
                "own_effect": self.features.get("own_effect"),
                "siblings": self.features.get("siblings")}


@dataclass(frozen=True)
class RankingResult:
    """Ranked candidate causes and the mass left to "outside the log"."""

    causes: tuple[CandidateCause, ...]
    external: float
    window: tuple[pd.Timestamp, pd.Timestamp]
    dose: "DoseResponse | None" = None
    stability: float | None = None  # share of resamples keeping the same top hypothesis
    # the onsets a change was aligned with: the detector's set, capped at
    # ``RankConfig.onset_set_reach`` either side (just the onset without a set)
    aligned: tuple[pd.Timestamp, pd.Timestamp] | None = None
    # when the top cause's own effect began, if later than the change (:mod:`.onset`)
    effect_onset: "EffectOnset | None" = None

    @property
    def top(self) -> CandidateCause | None:
        return self.causes[0] if self.causes else None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.to_dict() for c in self.causes])

    def to_dict(self) -> dict:
        return {"causes": [c.to_dict() for c in self.causes], "external": self.external,
                "window": [t.isoformat() for t in self.window], "stability": self.stability}


def alignment(lag: float, cfg: "RankConfig") -> float:
    """Log-likelihood of the onset lag, in grains, for a change that caused it.

    An abrupt divergence starts in the bucket its cause takes effect; effects
    that build up (caches, slow rollouts) start later with a quickly falling
    probability (exponential with mean ``cfg.lag_scale`` grains). The onset is
    estimated to a grain or two, so a change up to three grains after it loses
    one unit of log-likelihood per grain; later than that it cannot be the cause.
    """
    if lag >= 0:
        return cfg.w_align - max(lag - 1.0, 0.0) / cfg.lag_scale if lag >= 1 else cfg.w_align
    if lag >= -3:
        return cfg.w_align + lag
    return -np.inf


def leaf_deviation(leaves: pd.DataFrame, kind: str) -> np.ndarray:
    """Per-leaf deviation from the baseline that comes from the leaf itself.

    For a ratio, ``obs_num - obs_den * base_rate`` (the rate change, weighted
    by current volume); for a sum, ``obs_num - base_num``.
    """
    if kind == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(leaves["base_den"] > 0, leaves["base_num"] / leaves["base_den"], np.nan)
        tot_rate = leaves["base_num"].sum() / max(leaves["base_den"].sum(), 1e-12)
        rate = np.where(np.isnan(rate), tot_rate, rate)
        return (leaves["obs_num"] - leaves["obs_den"] * rate).to_numpy(dtype=float)
    return (leaves["obs_num"] - leaves["base_num"]).to_numpy(dtype=float)


def rank_changes(changes: pd.DataFrame, *, onset: pd.Timestamp, end: pd.Timestamp,
                 grain: pd.Timedelta, kind: str, direction_sign: float, leaves: pd.DataFrame,
                 top_slices: list[dict], series: RankSeries | None = None,
                 data_end: pd.Timestamp | None = None, focus: dict | None = None,
                 config: RankConfig | None = None,
                 prior: Callable[[object], tuple[float, str | None]] | None = None,
                 panel: RankPanel | None = None,
                 onset_set: tuple[pd.Timestamp, pd.Timestamp] | None = None,
                 ) -> RankingResult:
    """Rank changes near ``onset`` as causes of the divergence.

    Parameters
    ----------
    changes:
        The change log (``id, ts, kind, target, scope, rollout, ...``).
    onset, end:
        The divergence's first and last bucket.
    kind:
        ``"ratio"`` or ``"sum"``: how the metric aggregates.
    direction_sign:
        Sign of observed minus baseline over the divergence (-1 for a drop).
    leaves:
        Per-leaf ``base_*``/``obs_*`` sums over the divergence window.
    top_slices:
        Localized slices, most explanatory first, as dicts with ``filter``,
        ``explained_share`` and optionally ``den_share``.
    series:
        ``series(filter, negate)`` returns ``ts, num, den`` for the slice or for
        everything outside it; enables the difference-in-differences test.
    focus:
        The slice the divergence was detected in, when it was not the total:
        scope shares are then shares of that slice's deviation.
    onset_set:
        The onsets the data do not reject (the detector's 95% set). A change
        inside it is aligned with the onset (lag 0); outside, its lag is counted
        from the nearer edge. Without it the lag is counted from ``onset``.
    panel:
        ``panel(scopes, start, end)`` returns the metric per atom of the scopes;
        enables the joint model of concurrent changes, whose effect (each change
        with the others held fixed) replaces the per-change one.

    Returns
    -------
    RankingResult
        Causes sorted by confidence (a posterior that sums, with
        ``external``, to 1).
    """
    cfg = config or RankConfig()
    s_lo, s_hi = (pd.Timestamp(onset_set[0]), pd.Timestamp(onset_set[1])) \
        if onset_set is not None else (onset, onset)
    reach = cfg.onset_set_reach * grain
    s_lo, s_hi = max(min(s_lo, onset), onset - reach), min(max(s_hi, onset), onset + reach)
    lo, hi = s_lo - cfg.lookback, max(s_hi, onset + max(cfg.lookahead, 3 * grain))
    cand = changes[(changes["ts"] >= lo) & (changes["ts"] <= hi)]
    window = (lo, hi)
    if len(cand) == 0:
        return RankingResult((), 1.0, window, None, 1.0, (s_lo, s_hi))

    dev = leaf_deviation(leaves, kind)
    if focus:  # the divergence was found in a slice: shares are shares of its deviation
        dev = np.where(scope_mask(leaves, focus), dev, 0.0)
    total_dev = dev.sum()
    den = leaves["obs_den"].to_numpy(dtype=float) if kind == "ratio" else \
        leaves["base_num"].to_numpy(dtype=float)
    total_den = max(den.sum(), 1e-12)
    # How concentrated the localization says the divergence is (best s - c).
    loc_focus = 0.0
    focus_mask = None
    for sl in top_slices[:3]:
        m = scope_mask(leaves, sl.get("filter", {}))
        if m.all():
            continue
        focus_mask = m if focus_mask is None else (focus_mask | m)
        s = float(np.clip(dev[m].sum() / total_dev, -1.0, 1.0)) if total_dev else 0.0
        c = float(den[m].sum() / total_den)
        loc_focus = max(loc_focus, s - c)

    rows = []
    boot: list[tuple] = []  # what a resample needs to re-score each candidate
    for ch in cand.itertuples(index=False):
        scope = ch.scope if isinstance(ch.scope, dict) else {}
        t_ch = ch.ts.floor(grain)  # 14:20 takes effect in the 14:00 bucket
        lag = (s_lo - t_ch) / grain if t_ch < s_lo else \
            ((s_hi - t_ch) / grain if t_ch > s_hi else 0.0)
        f_align = alignment(lag, cfg)
        m = scope_mask(leaves, scope)
        s = float(dev[m].sum() / total_dev) if total_dev else 0.0
        s = float(np.clip(s, -1.0, 1.0))
        c = float(den[m].sum() / total_den)
        f_scope = (s - c) - 0.5 * max(0.0, loc_focus - (s - c))
        # A scoped change should move its whole scope; when the localized slices
        # cover only part of the scope's traffic, the rest of the scope stayed put.
        coverage = 1.0
        if scope and focus_mask is not None and m.any():
            coverage = float(den[m & focus_mask].sum() / max(den[m].sum(), 1e-12))
            t0 = ch.ts.floor(grain)  # the rest of the scope stayed put, or moved as well?
            if panel is not None and (1.0 - coverage) * s >= cfg.rest_check and rest_of_scope_moved(
                    panel, scope, [sl.get("filter", {}) for sl in top_slices[:3]], t0,
                    t0 - cfg.did_pre, min(t0 + cfg.did_post_max, (data_end or end) + grain), kind,
                    direction_sign, cfg.own_rule.min_t):
                coverage = 1.0
            f_scope -= (1.0 - coverage) * max(s, 0.0)
        if not m.any():
            f_scope = -1.0
        effect = sib = late = None
        f_effect = 0.0
        if series is not None and scope and 0 < m.sum() < len(m):
            t0 = ch.ts.floor(grain) if hasattr(ch.ts, "floor") else ch.ts
            lo_t = t0 - cfg.did_pre
            hi_t = min(t0 + cfg.did_post_max, (data_end or end) + grain)
            until = getattr(ch, "until", None)  # a person's window ends its post-period
            if until is not None and not pd.isna(until):
                hi_t = min(hi_t, max(pd.Timestamp(until).ceil(grain), t0 + 2 * grain))
            try:
                ex = series(scope, False)
                un = series(scope, True)
                ex = ex[(ex["ts"] >= lo_t) & (ex["ts"] < hi_t)]
                un = un[(un["ts"] >= lo_t) & (un["ts"] < hi_t)]
                effect = did_effect(ex, un, t0, kind)
            except (ValueError, KeyError):
                effect = None
            if effect is not None:
                f_effect = float(np.clip(direction_sign * effect.t_stat, -3.0, 8.0)) / 4.0
                # a lead carrying at least half the effect, clearly: it began before
                if (direction_sign * effect.pre_t_stat >= 3.0
                        and abs(effect.pre_estimate) >= 0.5 * abs(effect.estimate)):
                    f_effect = -1.0
            sib = None if effect is None else against_siblings(
                series, leaves, m, den, top_slices, focus, scope, t0, kind, lo_t, hi_t,
                cfg.own_rule, dev=dev, treated=co_treated(cand, leaves, ch, grain))
            late = None if effect is None or f_effect <= 0 else late_effect(
                ch, changes, ex, un, kind=kind, grain=grain, direction_sign=direction_sign,
                max_lag=cfg.delay_max, penalty=cfg.delay_penalty)
        sib_feat = None
        if sib is not None:  # explained away by the siblings: never adds blame
            sib_eff, sib_slice = sib
            f_effect = min(f_effect, effect_score(sib_eff, direction_sign))
            sib_feat = {"slice": sib_slice, **sib_eff.to_dict()}
        if late is not None:  # its units diverged long after it, or before it: not its effect
            f_effect = min(f_effect, 0.0)
        llr = f_align + cfg.w_scope * f_scope + cfg.w_effect * f_effect
        if not np.isfinite(f_align):
            llr = -np.inf  # took effect after the onset: cannot be the cause
        set_txt = f"the onset's 95% set ({s_lo:%m-%d %H:%M}..{s_hi:%m-%d %H:%M})"
        ev = _evidence(ch, lag, grain, s, c, scope, effect, top_slices, loc_focus,
                       ref=set_txt if s_lo < s_hi else None)  # the lag is from the set's edge
        if s_lo < s_hi and s_lo <= t_ch <= s_hi and t_ch != onset:
            ev = (f"inside the onset's 95% set ({s_lo:%m-%d %H:%M}..{s_hi:%m-%d %H:%M} at "
                  f"most {cfg.onset_set_reach} grains either side): the data cannot tell "
                  "this time from the estimated onset",) + ev[1:]
        if sib is not None:
            ev = ev + (sibling_evidence(sib[0], sib[1], cfg.own_rule, direction_sign),)
        if late is not None:
            ev = ev + (late.late_evidence(cfg.delay_max),)
        if scope and coverage < 0.9:
            ev = ev + (f"only {coverage:.0%} of the scope's traffic is in the diverging "
                       "slices: the rest of the scope behaves as before",)
        f_prior = 0.0
        if prior is not None and np.isfinite(llr):
            # prior(change) -> (log-odds, evidence line): learned from resolved
            # investigations (investigation.library.memory.prior_evidence), shown as such
            f_prior, why = prior(ch)
            llr += f_prior
            if why:
                ev = ev + (why,)
        rows.append((ch, llr, lag, s, c, effect, ev,
                     {"align": f_align, "scope": f_scope, "effect": f_effect,
                      "coverage": coverage,
                      "prior": f_prior, "siblings": sib_feat}))
        # the last flag: the coverage penalty applies (not when the rest of the scope moved)
        boot.append((m, c, f_align, effect, f_effect, f_prior, bool(scope) and coverage < 1.0))

    if panel is not None:
        joint_adjust(rows, boot, panel, kind=kind, grain=grain, direction_sign=direction_sign,
                      cfg=cfg, end=(data_end or end) + grain)
    if series is not None:
        ramp_effects(rows, changes, series, kind=kind, grain=grain, cfg=cfg,
                      end=(data_end or end) + grain, direction_sign=direction_sign)
    apply_own_effect_rule(rows, [b[0] for b in boot], dev, total_dev, cfg.own_rule,
                          cfg.external_score)
    apply_uniformity_rule(rows, w_effect=cfg.w_effect, external_score=cfg.external_score)
    scores = np.array([r[1] for r in rows], dtype=float)
    stability = _stability(scores, boot, leaves, kind, focus, focus_mask, loc_focus, cfg,
                           seed=int(onset.value % (2**31)))
    mx = max(np.max(scores[np.isfinite(scores)], initial=-np.inf), cfg.external_score)
    w = np.where(np.isfinite(scores), np.exp(scores - mx), 0.0)
    w_ext = np.exp(cfg.external_score - mx)
    z = w.sum() + w_ext
    post = w / z
    causes = [CandidateCause(
        change_id=str(ch.id), kind=str(ch.kind), target=str(ch.target), ts=ch.ts,
        scope=ch.scope if isinstance(ch.scope, dict) else {},
        rollout=None if pd.isna(ch.rollout) else float(ch.rollout), confidence=float(p),
        lag_grains=float(lag), scope_share=s, traffic_share=c, effect=eff, evidence=ev,
        features=feat) for (ch, _, lag, s, c, eff, ev, feat), p in zip(rows, post)]
    causes = _merge_rollouts(causes)
    causes.sort(key=lambda x: (-x.confidence, abs(x.lag_grains)))
    dose = None
    top = causes[0] if causes else None
    if top is not None and series is not None and top.scope and top.confidence >= 0.2:
        dose = dose_response(changes, top, series, kind=kind, grain=grain,
                             end=(data_end or end) + grain, direction_sign=direction_sign)
        if dose is not None:
            causes[0] = replace(top, evidence=top.evidence + (dose.evidence(),),
                                features={**top.features, "dose_response": dose.to_dict()})
    delayed = None
    if dose is None and top is not None and series is not None and top.scope \
            and top.confidence >= 0.2:
        delayed = delayed_start(top, series, kind=kind, grain=grain, cfg=cfg,
                                end=(data_end or end) + grain, direction_sign=direction_sign)
        if delayed is not None:
            causes[0] = replace(causes[0], evidence=causes[0].evidence
                                + (delayed.evidence(top.change_id),))
    causes, external = _calibrated(causes, float(w_ext / z))
    return RankingResult(tuple(causes), external, window, dose, stability, (s_lo, s_hi), delayed)


def _calibrated(causes: list[CandidateCause], external: float):
    """The causes with the shipped calibration map applied, and what is left to "external".

    The map is monotone: the order stays. Applied last, so that the thresholds
    inside the ranking (dose-response, delayed start) see the posterior they were
    chosen on.
    """
    from .calibration import calibration_map

    cal = calibration_map()
    if cal.identity or not causes:
        return causes, external
    p = cal([c.confidence for c in causes])
    if p.sum() > 1.0:
        p = p / p.sum()
    out = [replace(c, confidence=float(q)) for c, q in zip(causes, p)]
    return out, float(max(0.0, 1.0 - p.sum()))


def ramp_effects(rows: list, changes: pd.DataFrame, series, *, kind: str,
                 grain: pd.Timedelta, cfg, end: pd.Timestamp, direction_sign: float) -> None:
    """Mark, in place, the first dose of a ramp whose later doses diverge (``ramp_effect``).

    A 10% step's own comparison is weak by design; the ramp shows the effect
    when the exposure grows (a consistent dose-response with a step whose
    exposed units diverge).
    """
    for i, (ch, llr, lag, s, c, eff, ev, feat) in enumerate(rows):
        scoped = isinstance(ch.scope, dict) and bool(ch.scope)
        if not scoped or pd.isna(ch.rollout) or not np.isfinite(llr) \
                or has_own_effect(feat["effect"], cfg.own_rule):
            continue
        probe = CandidateCause(change_id=str(ch.id), kind=str(ch.kind), target=str(ch.target),
                               ts=ch.ts, scope=ch.scope, rollout=float(ch.rollout),
                               confidence=0.0, lag_grains=0.0, scope_share=0.0,
                               traffic_share=0.0, effect=None, evidence=())
        try:
            dose = dose_response(changes, probe, series, kind=kind, grain=grain, end=end,
                                 direction_sign=direction_sign)
        except (ValueError, KeyError):
            dose = None
        if dose is not None and dose.consistent and \
                dose.first_diverging(direction_sign, grain, cfg.own_rule.min_t) is not None:
            rows[i] = (ch, llr, lag, s, c, eff, ev + (
                "its later doses diverge with the exposure: the ramp's effect is its own",),
                {**feat, "ramp_effect": True})


def _merge_rollouts(causes: list[CandidateCause]) -> list[CandidateCause]:
    """Rows of one dosed rollout (same kind, target and scope, with rollout
    percentages) are one intervention: their posteriors add up on the best row.

    Without this, a 10% -> 50% -> 100% ramp splits its mass three ways and the
    flag that clearly did it can sit below 0.5 on every row.
    """
    import json as _json

    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(causes):
        if c.rollout is None or np.isnan(c.rollout):
            continue
        key = (c.kind, c.target, _json.dumps(c.scope, sort_keys=True))
        groups.setdefault(key, []).append(i)
    out = list(causes)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        best = max(idx, key=lambda i: causes[i].confidence)
        total = float(sum(causes[i].confidence for i in idx))
        others = [causes[i].change_id for i in idx if i != best]
        out[best] = replace(causes[best], confidence=total, evidence=causes[best].evidence + (
            f"one rollout with {', '.join(others)} (same flag and scope): their confidence "
            "is counted here",))
        for i in idx:
            if i != best:
                out[i] = replace(causes[i], confidence=0.0, evidence=causes[i].evidence + (
                    f"part of the rollout counted under {causes[best].change_id}",))
    return out


def _stability(scores, boot, leaves, kind, focus, focus_mask, loc_focus, cfg, *, seed: int,
               draws: int = 50) -> float | None:
    """Share of resamples in which the top hypothesis stays on top.

    Each draw resamples the leaf counts (Poisson, the sampling model of counts)
    and each difference-in-differences t statistic from its normal sampling
    distribution, re-scores every candidate and "outside the log", and checks
    whether the winner is unchanged. Seeded by the onset, so it is reproducible.
    """
    if not boot:
        return None
    rng = np.random.default_rng(seed)
    top0 = int(np.argmax(np.append(scores, cfg.external_score)))
    same = 0
    den_col = "obs_den" if kind == "ratio" else "base_num"
    for _ in range(draws):
        lv = leaves.copy()
        for col in ("obs_num", "base_num"):
            lv[col] = rng.poisson(np.maximum(lv[col].to_numpy(dtype=float), 0.0))
        dev = leaf_deviation(lv, kind)
        if focus:
            dev = np.where(scope_mask(lv, focus), dev, 0.0)
        tot = dev.sum()
        den = lv[den_col].to_numpy(dtype=float)
        tden = max(den.sum(), 1e-12)
        sc = []
        for m, c, f_align, eff, f_eff, f_prior, scoped in boot:
            if not np.isfinite(f_align):
                sc.append(-np.inf)
                continue
            s = float(np.clip(dev[m].sum() / tot, -1, 1)) if tot else 0.0
            c2 = float(den[m].sum() / tden)
            f_scope = (s - c2) - 0.5 * max(0.0, loc_focus - (s - c2))
            if scoped and focus_mask is not None and m.any():
                cov = float(den[m & focus_mask].sum() / max(den[m].sum(), 1e-12))
                f_scope -= (1.0 - cov) * max(s, 0.0)
            if not m.any():
                f_scope = -1.0
            fe = f_eff
            if eff is not None and f_eff != -1.0:  # t ~ N(t_hat, 1), in the divergence's direction
                fe = float(np.clip(f_eff * 4.0 + rng.standard_normal(), -3, 8)) / 4
            sc.append(f_align + cfg.w_scope * f_scope + cfg.w_effect * fe + f_prior)
        top = int(np.argmax(np.append(np.array(sc, dtype=float), cfg.external_score)))
        same += top == top0
    return same / draws


@dataclass(frozen=True)
class DoseResponse:
    """Effect per rollout step of a dosed change (same target, rising rollout)."""

    target: str
    steps: tuple[dict, ...]  # change_id, ts, rollout, effect (relative), n
    slope: float  # relative effect per 100% exposed
    r: float  # correlation of effect with exposure across steps
    first_step: pd.Timestamp
    consistent: bool

    @property
    def first_step_id(self) -> str:
        """The change that starts the ramp (the step at ``first_step``)."""
        at = [st["change_id"] for st in self.steps if pd.Timestamp(st["ts"]) >= self.first_step]
        return at[0] if at else self.steps[0]["change_id"]

    def first_diverging(self, direction_sign: float, grain: pd.Timedelta, min_t: float = 1.96
                        ) -> tuple[pd.Timestamp, str] | None:
        """``(time, change_id)`` of the first step whose exposed units diverge.

        A step diverges when its effect's ``t`` is at least ``min_t`` in the
        divergence's direction and every later step keeps that direction (the
        exposure only grows along a ramp). ``None`` when no step qualifies.
        """
        ts_ = [st.get("t") for st in self.steps]
        for i, st in enumerate(self.steps):
            t = ts_[i]
            if t is None or direction_sign * t < min_t:
                continue
            if all(direction_sign * later["effect"] > 0 for later in self.steps[i:]):
                return pd.Timestamp(st["ts"]).floor(grain), str(st["change_id"])
        return None

    def to_dict(self) -> dict:
        return {"target": self.target, "steps": list(self.steps), "slope": self.slope,
                "r": self.r, "first_step": self.first_step.isoformat(),
                "consistent": self.consistent}

    def evidence(self) -> str:
        parts = ", ".join(f"{st['rollout']:.0f}% {st['effect']:+.1%}" for st in self.steps)
        verdict = ("effect grows with the exposed share" if self.consistent
                   else "effect does not follow the exposed share")
        return (f"dose-response over the rollout of {self.target}: {parts}; {verdict} "
                f"(slope {self.slope:+.1%} per 100% exposed, r={self.r:.2f})")


def dose_response(changes: pd.DataFrame, cause: CandidateCause, series: RankSeries, *,
                  kind: str, grain: pd.Timedelta, end: pd.Timestamp,
                  direction_sign: float, lookback: pd.Timedelta = pd.Timedelta("7D")
                  ) -> DoseResponse | None:
    """Effect of each rollout step of ``cause``'s target within its scope.

    For every step (a change row of the same target with a rollout percentage)
    the mean log ratio exposed/unexposed over the step's interval is compared
    with the week before the first step; a real cause shows an effect that
    grows with the exposed share (proportional for a share-diluted effect).
    The ramp is the run of rising steps through the cause with the same
    targeting, cut where the flag was switched off for a wider targeting in
    between (a 1% step before a global switch-off is not part of a later ramp);
    the divergence is dated from its first step (``first_step``). Each step's
    ``t`` is its effect over a standard error from the pre-period's noise.
    """
    rows = changes[(changes["target"] == cause.target) & changes["rollout"].notna()]
    rows = rows[(rows["ts"] >= cause.ts - lookback) & (rows["ts"] <= end)]
    same = rows[[sc == cause.scope for sc in rows["scope"]]]  # the same targeting only
    if len(same) < 2:
        return None
    same = same.sort_values("ts").reset_index(drop=True)
    # A switch-off of the flag over a wider targeting (everyone, or a scope the
    # cause's scope lies in) ends any ramp before it: exposure went back to zero.
    own = cause.scope or {}
    resets = rows[[(r == 0) and isinstance(sc, dict) and sc != own and
                   all(own.get(k) == v for k, v in sc.items())
                   for sc, r in zip(rows["scope"], rows["rollout"])]]["ts"]
    # keep the ramp through the cause: strictly rising exposure before and after it
    at = same.index[same["id"].astype(str) == cause.change_id]
    if len(at) == 0:
        return None
    i0 = i1 = int(at[0])
    roll = same["rollout"].to_numpy(dtype=float)
    ts_ = same["ts"]
    while i0 > 0 and roll[i0 - 1] < roll[i0] and not (
            (resets > ts_.iloc[i0 - 1]) & (resets <= ts_.iloc[i0])).any():
        i0 -= 1
    while i1 < len(same) - 1 and roll[i1 + 1] > roll[i1] and not (
            (resets > ts_.iloc[i1]) & (resets <= ts_.iloc[i1 + 1])).any():
        i1 += 1
    same = same.iloc[i0:i1 + 1]
    if len(same) < 2:
        return None
    first = same["ts"].iloc[0].floor(grain)
    ex = series(cause.scope, False)
    un = series(cause.scope, True)
    e, u = ex.set_index("ts"), un.set_index("ts")
    idx = e.index.intersection(u.index)
    if kind == "ratio":
        ve, vu = e.loc[idx, "num"] / e.loc[idx, "den"], u.loc[idx, "num"] / u.loc[idx, "den"]
    else:
        ve, vu = e.loc[idx, "num"], u.loc[idx, "num"]
    ok = (ve > 0) & (vu > 0)
    d = (np.log(ve[ok]) - np.log(vu[ok])).astype(float)
    pre = d[(d.index < first) & (d.index >= first - lookback)]
    if len(pre) < 24:
        return None
    # hour-of-day profile of the pre-period removes daily shape differences
    prof = pre.groupby(pre.index.hour).mean()
    resid = d - prof.reindex(d.index.hour).to_numpy()
    # a step's standard error from the pre-period's noise, widened for its lag-1 autocorrelation
    r_pre = resid[(resid.index < first) & (resid.index >= first - lookback)].to_numpy()
    sd_pre = float(np.std(r_pre, ddof=1)) if len(r_pre) > 2 else float("nan")
    r1 = float(np.clip(np.corrcoef(r_pre[:-1], r_pre[1:])[0, 1], 0.0, 0.9)) \
        if len(r_pre) > 3 and np.ptp(r_pre) > 0 else 0.0
    lr = (1.0 + r1) / (1.0 - r1)
    bounds = list(same["ts"].dt.floor(grain)) + [end]
    steps = []
    for i, row in enumerate(same.itertuples(index=False)):
        seg = resid[(resid.index >= bounds[i]) & (resid.index < bounds[i + 1])]
        if len(seg) == 0:
            continue
        se = sd_pre * np.sqrt(lr / len(seg))
        steps.append({"change_id": str(row.id), "ts": row.ts.isoformat(),
                      "rollout": float(row.rollout), "effect": float(np.expm1(seg.mean())),
                      "n": int(len(seg)),
                      "t": float(seg.mean() / se) if se > 0 else None})
    if len(steps) < 2:
        return None
    x = np.array([st["rollout"] / 100.0 for st in steps])
    y = np.array([np.log1p(st["effect"]) for st in steps])
    slope = float((x @ y) / (x @ x)) if (x @ x) > 0 else 0.0
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(x) > 0 and np.ptp(y) > 0 else 0.0
    consistent = bool(np.sign(slope) == np.sign(direction_sign) and
                      direction_sign * r >= 0.8 if np.ptp(x) > 0 else False)
    return DoseResponse(target=cause.target, steps=tuple(steps), slope=float(np.expm1(slope)),
                        r=r, first_step=first, consistent=consistent)


def _fmt_scope(scope: dict) -> str:
    if not scope:
        return "everywhere"
    return ", ".join(f"{k}={'|'.join(v) if isinstance(v, list) else v}" for k, v in scope.items())


def _evidence(ch, lag, grain, s, c, scope, effect, top_slices, loc_focus,
              ref: str | None = None) -> tuple[str, ...]:
    """Evidence lines; ``ref`` names what the lag is counted from (the onset's set)."""
    ev = []
    hours = lag * grain / pd.Timedelta("1h")
    onset, est = (ref, ref) if ref else ("the onset", "the estimated onset")
    if lag < -3:
        ev.append(f"took effect {abs(hours):.0f}h after {onset}: cannot explain it")
    elif lag < -1:
        ev.append(f"took effect {abs(hours):.0f}h after {est}: only if the onset "
                  "estimate is early")
    elif lag < 1:
        ev.append("onset within 1 grain of the change" if lag >= 0
                  else f"change within 1 grain after {est}")
    else:
        ev.append(f"change {hours:.0f}h before {onset}")
    if top_slices:
        top = top_slices[0].get("filter", {})
        if scope == top:
            ev.append("scope matches the top slice")
        elif not scope:
            if loc_focus > 0.3:
                ev.append(f"scope is everywhere, but the divergence is concentrated in "
                          f"{_fmt_scope(top)}")
            else:
                ev.append("scope is everywhere, as is the divergence")
    ev.append(f"scope {_fmt_scope(scope)} holds {s:.0%} of the divergence and {c:.0%} "
              "of the traffic")
    if effect is not None:
        ev.append(f"difference-in-differences {effect.estimate:+.1%} "
                  f"(95% CI {effect.ci_low:+.1%}..{effect.ci_high:+.1%}, t={effect.t_stat:.1f}) "
                  "exposed vs unexposed")
        if abs(effect.pre_t_stat) >= 3.0 and abs(effect.pre_estimate) >= 0.5 * abs(effect.estimate):
            ev.append(f"but exposed and unexposed already differed by {effect.pre_estimate:+.1%} "
                      f"in the 6h before the change (t={effect.pre_t_stat:.1f}): it began earlier")
    elif scope:
        ev.append("no difference-in-differences test (no unexposed group or too few buckets)")
    return tuple(ev)
