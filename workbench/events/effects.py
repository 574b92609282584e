"""The effect of one change: a difference-in-differences of the log metric.

Exposed against unexposed buckets, before and after the change, on the log of
the metric (a relative effect), with heteroskedasticity- and autocorrelation-
consistent errors (Newey and West 1987, "A simple, positive semi-definite,
heteroskedasticity and autocorrelation consistent covariance matrix",
Econometrica 55(3); ``statsmodels`` OLS with HAC) and an event-study lead for
pre-trends (Angrist and Pischke, *Mostly Harmless Econometrics*, 2009, ch. 5).
The contrast keeps its own hour-of-day and weekend pattern (group-specific
seasonality, the "unit-specific trends" of Angrist and Pischke 5.2, here a
weekly cycle): exposed and unexposed units need not share a weekly rhythm.
Shared by :mod:`.rank` and :mod:`.siblings`. :func:`rest_of_scope_moved` uses the
same comparison for the part of a scope outside the diverging slices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EffectEstimate", "did_effect", "rest_of_scope_moved", "scope_mask"]

#: Weekend and weekday buckets the pre period needs before the weekend term is fitted
_MIN_WEEKEND = 12


@dataclass(frozen=True)
class EffectEstimate:
    """A difference-in-differences estimate of one change's effect (log scale)."""

    estimate: float  # relative effect, exp(coef) - 1
    ci_low: float
    ci_high: float
    t_stat: float
    n_pre: int
    n_post: int
    method: str = "did-log-hac"
    pre_estimate: float = 0.0  # the same contrast in the 6 hours before the change
    pre_t_stat: float = 0.0

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def scope_mask(leaves: pd.DataFrame, scope: dict) -> np.ndarray:
    """Which leaves a change's scope covers (``{}`` covers everything)."""
    mask = np.ones(len(leaves), dtype=bool)
    for dim, val in (scope or {}).items():
        if dim not in leaves.columns:
            return np.zeros(len(leaves), dtype=bool)
        vals = val if isinstance(val, list) else [val]
        mask &= leaves[dim].astype(str).isin([str(v) for v in vals]).to_numpy()
    return mask


def did_effect(exposed: pd.DataFrame, unexposed: pd.DataFrame, change_ts: pd.Timestamp,
               kind: str) -> EffectEstimate | None:
    """Difference-in-differences of log metric, exposed minus unexposed, around ``change_ts``.

    Parameters
    ----------
    exposed, unexposed:
        ``ts, num, den`` per bucket for the two groups.
    """
    from statsmodels.regression import linear_model as sm  # not statsmodels.api: ~5x faster import

    e = exposed.set_index("ts")
    u = unexposed.set_index("ts")
    idx = e.index.intersection(u.index)
    if len(idx) < 8:
        return None
    e, u = e.loc[idx], u.loc[idx]
    if kind == "ratio":
        ve, vu = e["num"] / e["den"], u["num"] / u["den"]
    else:
        ve, vu = e["num"], u["num"]
    ok = (ve > 0) & (vu > 0) & np.isfinite(ve) & np.isfinite(vu)
    if kind == "ratio":
        ok &= (e["den"] > 0) & (u["den"] > 0)
    d = (np.log(ve[ok]) - np.log(vu[ok])).astype(float)
    post = (d.index >= change_ts).astype(float)
    n_post, n_pre = int(post.sum()), int(len(post) - post.sum())
    if n_post < 2 or n_pre < 4:
        return None
    # Event-study lead: the buckets just before the change get their own term. A
    # "lead" as large as the effect means the divergence began before the change
    # (a pre-trend), which refutes it as the cause.
    lead_len = pd.Timedelta(hours=6)
    lead = ((d.index < change_ts) & (d.index >= change_ts - lead_len)).astype(float)
    # Hour-of-day effects differ between groups (mobile vs web at night): absorb them.
    hours = pd.get_dummies(d.index.hour, prefix="h", drop_first=True, dtype=float)
    use_lead = lead.sum() >= 3 and (n_pre - lead.sum()) >= 24
    cols = [np.ones(len(d)), post] + ([lead] if use_lead else [])
    # Weekly patterns differ between groups as well (web dips at weekends, mobile
    # does not): a post period on a weekend read against a mostly-weekday pre
    # period takes the dip for an effect. A weekend term, measured on the pre
    # period's own weekend and weekday buckets, absorbs it.
    weekend = (d.index.day_of_week >= 5).astype(float)
    pre_we = float(weekend[post == 0].sum())
    if pre_we >= _MIN_WEEKEND and n_pre - pre_we >= _MIN_WEEKEND:
        cols.append(weekend)
    X = np.column_stack(cols + [hours.to_numpy()])
    w = None
    if kind == "ratio":  # weight buckets by the smaller group's volume: noisy hours count less
        w = np.minimum(e["den"][ok], u["den"][ok]).to_numpy(dtype=float)
    model = sm.WLS(d.to_numpy(), X, weights=w) if w is not None else sm.OLS(d.to_numpy(), X)
    import warnings

    try:
        with warnings.catch_warnings():
            # a degenerate design (constant difference) makes HAC's sqrt warn; the
            # non-finite standard error is rejected just below
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = model.fit(cov_type="HAC", cov_kwds={"maxlags": 3})
            bse = np.asarray(fit.bse, dtype=float)  # lazily computed: inside the filter
            conv = np.sqrt(np.diag(fit.normalized_cov_params) * fit.scale)  # conventional
    except (ValueError, np.linalg.LinAlgError):
        return None
    coef, se = float(fit.params[1]), float(bse[1])
    if not np.isfinite(se) or se <= 0:
        return None
    pre_c, pre_t = 0.0, 0.0
    # The lead rests on 6 buckets: a robust error from so few residuals is biased
    # towards zero (each has leverage ~1/6 and the lead fits their mean exactly), and
    # on quiet passports its |t| passed 3 for 8% of changes with no effect instead of
    # 0.3%. The larger of the robust and the conventional error (Angrist and Pischke
    # 2009, 8.1) keeps it honest (0.1%).
    lead_se = max(float(bse[2]), float(conv[2])) if use_lead else np.nan
    if use_lead and np.isfinite(lead_se) and lead_se > 0:
        pre_c, pre_t = float(fit.params[2]), float(fit.params[2] / lead_se)
    return EffectEstimate(estimate=float(np.expm1(coef)), ci_low=float(np.expm1(coef - 1.96 * se)),
                          ci_high=float(np.expm1(coef + 1.96 * se)), t_stat=coef / se,
                          n_pre=n_pre, n_post=n_post, pre_estimate=float(np.expm1(pre_c)),
                          pre_t_stat=pre_t)


def rest_of_scope_moved(panel, scope: dict, slices: list, t0: pd.Timestamp, start: pd.Timestamp,
                        stop: pd.Timestamp, kind: str, sign: float, min_t: float = 1.96) -> bool:
    """Did the part of a scope outside the diverging slices move as well?

    The localization can name a part of a change's scope when the effect is
    small and spread evenly over it: one sub-slice's noise lifts it above the
    rest (small_effect dev seed 8400104: a -4.8% effect on region=EU, t = -3.6,
    localized to EU and plan=plus, 18% of the scope, and the change lost its
    blame because "the rest of the scope behaves as before"). That claim is
    tested here rather than assumed: the difference-in-differences of the rest
    of the scope against the traffic outside both the scope and the slices
    (:func:`did_effect`), from ``start`` to ``stop``, must show no effect of its
    own in the divergence's direction (``sign * t < min_t``).

    Parameters
    ----------
    panel:
        ``panel(scopes, start, end)`` -> ``ts, atom, num, den``
        (:func:`workbench.store.metric_panel`).
    scope, slices:
        The change's scope and the diverging slices' filters (at most 15).
    t0:
        The change's bucket.
    kind:
        ``"ratio"`` or ``"sum"``.
    sign, min_t:
        The divergence's direction and the ``t`` that counts as moving.
    """
    slices = [dict(f) for f in slices if f][:15]
    try:
        df = panel([scope] + slices, start, stop)
    except (ValueError, KeyError):
        return False
    if df is None or df.empty:
        return False
    atom = df["atom"].to_numpy()
    parts = [df[sel].groupby("ts", as_index=False)[["num", "den"]].sum()
             for sel in (atom == 1, atom == 0)]  # the rest of the scope; neither
    eff = did_effect(parts[0], parts[1], t0, kind)
    return eff is not None and np.isfinite(eff.t_stat) and sign * eff.t_stat >= min_t
