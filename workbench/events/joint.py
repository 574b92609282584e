"""Disentangling concurrent changes: one regression over several exposures at once.

When two or more changes land near the onset with overlapping scopes (a flag for
iOS and a deploy for iOS 5.2 in the same hour), a difference-in-differences per
change compares each exposed group with everything else, and everything else
holds the other change's exposed traffic: both look guilty. The joint model
estimates every change's effect *holding the others fixed*.

Model
-----
The population is cut into *atoms*, the groups sharing one pattern of
membership in the candidate scopes (:func:`workbench.store.metric_panel`). For
atom ``a`` and bucket ``t``::

    log y[a, t] = alpha[a, hour(t)] + gamma[t] + sum_k beta_k * D_k[a, t] + e[a, t]

with ``y`` the rate (ratio metrics) or the sum, ``D_k = 1`` when atom ``a`` is in
change ``k``'s scope and ``t`` is at or after its time, atom-by-hour-of-day
effects (each group keeps its own daily shape) and bucket effects (whatever hit
every group at once). It is the two-way fixed-effects difference-in-differences
with several treatments (Wooldridge 2021; de Chaisemartin and D'Haultfoeuille
2023 discuss when heterogeneous effects bias it: here each treatment switches
on once and the window is short). The fixed effects are absorbed by
alternating weighted demeaning (Guimaraes and Portugal 2010, as in reghdfe and
fixest) and only the exposures are regressed. Weighted least squares with weights the
numerator count (``Var(log y) ~ 1/count`` for Poisson and binomial counts);
standard errors clustered by atom and day (statsmodels), so correlation within
a day does not pass for evidence. ``beta_k`` is reported as ``exp(beta) - 1``.

A change whose exposure is indistinguishable from another's (same atoms, same
bucket), nearly so (a variance inflation factor above 10: the same scope
changed twice within a few hours) or from the bucket effects (a scope that
covers every atom) is not identified; it is reported as such and keeps its own
estimate.

References
----------
Guimaraes, P. and Portugal, P. (2010). A simple feasible procedure to fit models
with high-dimensional fixed effects. Stata Journal 10, 628-649.
Wooldridge, J. M. (2021). Two-way fixed effects, the two-way Mundlak regression,
and difference-in-differences estimators. SSRN 3906345.
Marquardt, D. W. (1970). Generalized inverses, ridge regression, biased linear
estimation, and nonlinear estimation. Technometrics 12, 591-612.
Kutner, M. H., Nachtsheim, C. J., Neter, J. and Li, W. (2005). Applied Linear
Statistical Models, 5th ed., 10.5 (variance inflation factors).
de Chaisemartin, C. and D'Haultfoeuille, X. (2023). Two-way fixed effects and
differences-in-differences with heterogeneous treatment effects: a survey.
Econometrics Journal 26, C1-C30.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class JointEffect:
    """One change's effect with the other concurrent changes held fixed."""

    index: int              # position in the scopes given
    identified: bool
    estimate: float         # relative effect exp(beta) - 1 (nan when not identified)
    ci_low: float
    ci_high: float
    t_stat: float
    reason: str = ""        # why not identified

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class JointEffects:
    effects: tuple[JointEffect, ...]
    n_atoms: int
    n_obs: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.effects])


def joint_effects(panel: pd.DataFrame, times: list[pd.Timestamp], *, kind: str,
                  grain: pd.Timedelta, max_vif: float = 10.0) -> JointEffects | None:
    """Fit the joint model on ``panel`` (``ts, atom, num, den``) for changes at ``times``.

    ``times[k]`` is when change ``k`` (bit ``2**k`` of ``atom``) took effect.
    An exposure whose variance inflation factor, after the fixed effects, exceeds
    ``max_vif`` is not identified (:func:`_separable`).
    Returns ``None`` when the panel is too small to fit (fewer than two atoms or
    no bucket before every change).

    Examples
    --------
    >>> fx = joint_effects(panel, [t_flag, t_deploy], kind="ratio", grain=hour)  # doctest: +SKIP
    >>> fx.to_frame()[["index", "estimate", "t_stat"]]                           # doctest: +SKIP
    """
    from statsmodels.regression import linear_model

    K = len(times)
    p = panel[(panel["num"] > 0) & (panel["den"] > 0)].copy()
    if p.empty or p["atom"].nunique() < 2:
        return None
    p["ts"] = pd.to_datetime(p["ts"], utc=True)
    y = np.log(p["num"] / p["den"]) if kind == "ratio" else np.log(p["num"])
    atoms = np.sort(p["atom"].unique())
    t0 = [pd.Timestamp(t).floor(grain) for t in times]
    D = np.column_stack([((p["atom"].to_numpy() >> k) & 1).astype(bool)
                         & (p["ts"] >= t0[k]).to_numpy() for k in range(K)]).astype(float)
    effects: list[JointEffect | None] = [None] * K
    # identification: a scope covering every atom moves with the bucket effects;
    # two changes with the same atoms and bucket are one column
    ident = []
    for k in range(K):
        inside = {int(a) for a in atoms if (int(a) >> k) & 1}
        if not inside:
            effects[k] = _unidentified(k, "no traffic in its scope")
        elif len(inside) == len(atoms):
            effects[k] = _unidentified(k, "its scope covers every group compared: nothing "
                                          "unexposed to contrast with")
        elif not (D[:, k] == 0).any() or D[:, k].sum() < 2:
            effects[k] = _unidentified(k, "too few exposed buckets")
        else:
            twin = next((j for j in ident if np.array_equal(D[:, j], D[:, k])), None)
            if twin is not None:
                effects[k] = _unidentified(k, f"exposes exactly the traffic of change #{twin} at "
                                              "the same time: the data cannot separate them")
            else:
                ident.append(k)
    if not ident:
        return JointEffects(tuple(effects), len(atoms), len(p))
    # Fixed effects absorbed by alternating weighted demeaning (the
    # Frisch-Waugh-Lovell route of reghdfe/fixest: Guimaraes and Portugal 2010),
    # so no dense dummy matrix is built; only the K exposures are regressed.
    ts_codes = pd.factorize(p["ts"], sort=True)[0]
    cell_codes = pd.factorize(p["atom"].astype(str) + "_" + p["ts"].dt.hour.astype(str),
                              sort=True)[0]
    w = np.maximum(p["num"].to_numpy(dtype=float), 1.0)
    Z = np.column_stack([y.to_numpy(dtype=float), D[:, ident]])
    Z = _absorb(Z, w, (cell_codes, ts_codes))
    # near-twins: exposures that differ in a few buckets only (the same scope changed
    # twice within the hour) are identified on those buckets' noise alone
    keep, near = _separable(Z[:, 1:], w, max_vif)
    for j, (partner, vif) in near.items():
        effects[ident[j]] = _unidentified(
            ident[j], f"its exposure nearly repeats change #{ident[partner]}'s (variance "
                      f"inflation {vif:.0f} > {max_vif:g}): the data cannot separate them")
    ident = [ident[j] for j in keep]
    Z = Z[:, [0] + [1 + j for j in keep]]
    groups = pd.factorize(p["atom"].astype(str) + "_" + p["ts"].dt.strftime("%Y-%m-%d"))[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = linear_model.WLS(Z[:, 0], Z[:, 1:], weights=w).fit(
                cov_type="cluster", cov_kwds={"groups": groups})
            bse = np.asarray(fit.bse, dtype=float)  # lazily computed: inside the filter
    except (ValueError, np.linalg.LinAlgError):
        return None
    n = len(p)
    for j, k in enumerate(ident):
        b, se = float(fit.params[j]), float(bse[j])
        if not np.isfinite(se) or se <= 0:
            effects[k] = _unidentified(k, "no variance left after the fixed effects")
            continue
        effects[k] = JointEffect(index=k, identified=True, estimate=float(np.expm1(b)),
                                 ci_low=float(np.expm1(b - 1.96 * se)),
                                 ci_high=float(np.expm1(b + 1.96 * se)), t_stat=b / se)
    return JointEffects(tuple(effects), len(atoms), n)


def joint_adjust(rows: list, boot: list, panel, *, kind: str, grain: pd.Timedelta,
                 direction_sign: float, cfg, end: pd.Timestamp) -> None:
    """Refit the leading concurrent scoped candidates jointly; update their scores in place.

    The ranking's step (:func:`workbench.events.rank.rank_changes`): ``rows`` and
    ``boot`` are its per-candidate rows, ``panel`` its ``panel(scopes, start,
    end)`` and ``cfg`` its :class:`~workbench.events.rank.RankConfig`.

    A change's effect evidence becomes the weaker of its own difference-in-
    differences and its joint effect (the others held fixed): the joint model
    explains away a change whose apparent effect belongs to a concurrent one, and
    never adds blame. It explains away only when another member carries an
    effect in the divergence's direction (``|t| >= own_rule.min_t``): scopes that
    together cover everyone leave no never-exposed group, the exposed groups
    then serve as each other's controls (Goodman-Bacon, 2021, "Difference-in-
    differences with variation in treatment timing", J. Econometrics 225,
    254-277) and the joint estimate loses its precision without naming another
    culprit. Every member's evidence says what the joint model found.
    One row per rollout enters (its best step).
    """
    import json as _json

    from .effects import EffectEstimate

    order = [i for i in np.argsort([-r[1] for r in rows]) if np.isfinite(rows[i][1])
             and isinstance(rows[i][0].scope, dict) and rows[i][0].scope]
    if len(order) < 2:
        return
    lead_ts = rows[order[0]][0].ts
    members, seen = [], set()
    for i in order:
        ch = rows[i][0]
        key = (ch.kind, ch.target, _json.dumps(ch.scope, sort_keys=True))
        if key in seen or abs(ch.ts - lead_ts) > cfg.joint_window:
            continue
        seen.add(key)
        members.append(i)
        if len(members) == cfg.joint_k:
            break
    if len(members) < 2:
        return
    times = [rows[i][0].ts.floor(grain) for i in members]
    start = min(times) - cfg.did_pre
    stop = min(max(times) + cfg.did_post_max, end)
    try:
        fx = joint_effects(panel([rows[i][0].scope for i in members], start, stop),
                           times, kind=kind, grain=grain)
    except (ValueError, KeyError):
        fx = None
    if fx is None:
        return
    ids = [str(rows[i][0].id) for i in members]
    # the members the joint model itself blames (an effect in the divergence's direction)
    blamed = {k for k, e in enumerate(fx.effects)
              if e.identified and direction_sign * e.t_stat >= cfg.own_rule.min_t}
    for k, i in enumerate(members):
        e = fx.effects[k]
        ch, llr, lag, s, c, effect, ev, feat = rows[i]
        others = ", ".join(x for x in ids if x != ids[k])
        if not e.identified:
            ev = ev + (f"joint model with {others}: not separable ({e.reason})",)
            rows[i] = (ch, llr, lag, s, c, effect, ev, {**feat, "joint": e.to_dict()})
            continue
        if not blamed - {k}:  # no other member carries it: the joint fit found no other story
            ev = ev + (f"joint model with {others}: {e.estimate:+.1%} (95% CI "
                       f"{e.ci_low:+.1%}..{e.ci_high:+.1%}), and none of the others "
                       "carries the effect: its own comparison stands",)
            rows[i] = (ch, llr, lag, s, c, effect, ev, {**feat, "joint": e.to_dict()})
            continue
        f_old = feat["effect"]
        # The joint model explains away; it never adds blame its own comparison does
        # not show: a shock outside the log that hits part of one group can load on
        # a change the per-change comparison clears (both tests must agree).
        f_new = f_old if f_old == -1.0 else \
            min(f_old, float(np.clip(direction_sign * e.t_stat, -3.0, 8.0)) / 4.0)
        llr = llr + cfg.w_effect * (f_new - f_old)
        ev = ev + (f"joint model with {others} (each holding the others fixed): "
                   f"{e.estimate:+.1%} (95% CI {e.ci_low:+.1%}..{e.ci_high:+.1%}, "
                   f"t = {e.t_stat:.1f})",)
        rows[i] = (ch, llr, lag, s, c, effect, ev,
                   {**feat, "effect": f_new, "joint": e.to_dict()})
        m, c_, f_align, eff, _f_eff, f_prior, scoped = boot[i]
        j_eff = EffectEstimate(estimate=e.estimate, ci_low=e.ci_low, ci_high=e.ci_high,
                               t_stat=e.t_stat, n_pre=0, n_post=0, method="joint-twfe")
        boot[i] = (m, c_, f_align, j_eff if f_old != -1.0 else eff, f_new, f_prior, scoped)


def _separable(X: np.ndarray, w: np.ndarray, max_vif: float) -> tuple[list, dict]:
    """Columns of ``X`` (exposures after the fixed effects) that can be told apart.

    The variance inflation factor of column ``k``, ``1 / (1 - R_k^2)`` with
    ``R_k^2`` from regressing it on the others (weighted), is how much the
    others inflate its estimate's variance. Above ``max_vif`` (10, the usual
    rule of thumb: Marquardt 1970; Kutner et al. 2005, 10.5) the estimate rests
    on the few buckets where the exposures differ, and two such near-twins come
    out large and of opposite signs (small_effect dev seed 8400005: two changes
    to one scope an hour apart, variance inflation 64, t = -2.3 and +2.8; the
    first "carried" the divergence away from the true culprit). Of the columns
    above ``max_vif`` the last goes first (the members come strongest first, and
    a pair of near-twins has one factor), until every factor is at most
    ``max_vif``.

    Returns
    -------
    (list, dict)
        Positions kept, and ``{dropped position: (its closest kept partner, factor)}``.
    """
    xw = X * np.sqrt(w)[:, None]
    keep, dropped = list(range(X.shape[1])), {}
    while len(keep) > 1:
        g = xw[:, keep].T @ xw[:, keep]
        d = np.sqrt(np.maximum(np.diag(g), 1e-300))
        r = g / np.outer(d, d)
        # a pseudo-inverse: a column the fixed effects emptied (left for the fit to
        # report) has a zero row and no factor, and does not make the rest singular
        vif = np.diag(np.linalg.pinv(r, hermitian=True))
        over = np.flatnonzero(vif > max_vif)
        if not len(over):
            break
        j = int(over[-1])  # the last such member (the ranking's weaker) goes first
        rj = np.abs(r[j]).copy()
        rj[j] = -1.0
        dropped[keep[j]] = (keep[int(np.argmax(rj))], float(vif[j]))
        keep.pop(j)
    return keep, dropped


def _absorb(Z: np.ndarray, w: np.ndarray, factors: tuple, *, tol: float = 1e-10,
            max_iter: int = 500) -> np.ndarray:
    """Columns of ``Z`` minus their weighted projection on the dummies of ``factors``.

    Alternating projections (method of alternating projections; von Neumann,
    Halperin): demean within each factor in turn until nothing moves.
    """
    Z = Z.copy()
    sums_w = [np.bincount(f, weights=w) for f in factors]
    scale = np.maximum(np.abs(Z).max(axis=0), 1e-12)
    for _ in range(max_iter):
        step = 0.0
        for f, sw in zip(factors, sums_w):
            means = np.column_stack([np.bincount(f, weights=w * Z[:, j]) for j in
                                     range(Z.shape[1])]) / np.maximum(sw, 1e-300)[:, None]
            Z -= means[f]
            step = max(step, float(np.max(np.abs(means).max(axis=0) / scale)))
        if step < tol:
            break
    return Z


def _unidentified(k: int, why: str) -> JointEffect:
    return JointEffect(index=k, identified=False, estimate=float("nan"), ci_low=float("nan"),
                       ci_high=float("nan"), t_stat=float("nan"), reason=why)
