"""Counterfactual timelines: the metric in the divergence's scope without the change.

The metric the exposed units would have shown without the change is predicted
from the units the change did not touch, in the spirit of the synthetic
control method (Abadie, Diamond and Hainmueller 2010) and of CausalImpact's
regression on control series (Brodersen et al. 2015), with the static
regression of a comparative interrupted time series:

1. **Series.** Per time bucket, the metric in the *region* (the cause's scope
   narrowed to the slice the divergence was localized to, when the slice lies
   inside the scope: a divergence on iOS 5.2 is compared on iOS 5.2, never on
   the total) and in the *donor* (all traffic outside the cause's scope).
2. **Model.** On the pre-period (before the first exposure), a quasi-Poisson
   generalized linear model (statsmodels ``GLM``, log link, the denominator
   as exposure offset, dispersion from Pearson's chi-square; Wedderburn 1974)
   of the region's numerator on the donor's log metric, a weekend indicator
   and one level per bucket of the day (seasonality). A
   count model, not least squares on log rates: a slice converting a few
   times an hour has log rates biased by their own noise.
3. **Counterfactual.** The fitted model predicts every bucket after the change
   from the donor: the metric without the change, with a 95 % prediction
   interval per bucket (parameter uncertainty plus the bucket's own noise).
4. **Lag and ramp.** The gap between observed and predicted log metric after
   the change is modelled as ``delta * dose_t * 1[t >= onset]``, where
   ``dose_t`` is the exposed share of a staged rollout at ``t`` and the onset is
   searched from the change time to ``max_lag`` later; the earliest onset
   whose fit is not significantly worse than the best one (likelihood-ratio,
   chi-square with one degree of freedom) is kept, so an effect that starts
   hours after the change is not smeared over the hours before it and a
   prompt effect is not cut short. ``delta`` is the effect at full exposure.
5. **Total.** The change's total effect is observed minus counterfactual
   numerator summed from the onset to the end of the divergence (a rate's
   effect is counted in its numerator at the observed denominator: orders
   lost, not rate points), with a 95 % interval from the prediction variance,
   widened for the residuals' autocorrelation by the AR(1) long-run variance
   factor ``(1 + rho) / (1 - rho)``.

References
----------
Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods
for comparative case studies. *JASA* 105(490).
Brodersen, K. H., Gallusser, F., Koehler, J., Remy, N. and Scott, S. L.
(2015). Inferring causal impact using Bayesian structural time-series models.
*Ann. Appl. Stat.* 9(1).
Wedderburn, R. W. M. (1974). Quasi-likelihood functions, generalized linear
models, and the Gauss-Newton method. *Biometrika* 61(3).
Bernal, J. L., Cummins, S. and Gasparrini, A. (2017). Interrupted time series
regression for the evaluation of public health interventions. *Int. J.
Epidemiol.* 46(1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._format import fmt_filter
from .._format import iso as _iso
from ._table import UnitTable, utc


@dataclass(frozen=True)
class CounterfactualConfig:
    """How the counterfactual timeline is fitted.

    Attributes
    ----------
    pre:
        Pre-period the model learns from (ends at the first exposure).
    context:
        Buckets before the change shown in the series (to see the fit).
    max_lag:
        The onset of the effect is searched up to this long after the change.
    alpha:
        Level of the per-bucket bands and of the total's interval.
    lag_chi2:
        The earliest onset whose fit is worse than the best by less than this
        likelihood-ratio statistic is kept (3.84: chi-square(1) at 5 %).
    trend:
        Add a linear time trend of the region relative to the donor. Off: the
        donor carries the trend both share, and a region's own trend
        extrapolated over the post-period doubled the median error of the
        total on the tuning incidents (2 % against 1 %, ``benchmarks/causal.py``).
    """

    pre: pd.Timedelta = pd.Timedelta("14D")
    context: pd.Timedelta = pd.Timedelta("48h")
    max_lag: pd.Timedelta = pd.Timedelta("24h")
    alpha: float = 0.05
    lag_chi2: float = 3.84
    trend: bool = False


@dataclass(frozen=True)
class ScopeCounterfactual:
    """The metric without the change in the divergence's scope (module docstring).

    ``series`` has one row per bucket: ``ts, observed, counterfactual, lo, hi``
    (the metric), ``dose`` (exposed share), ``observed_num, counterfactual_num``
    (the numerator, the effect's unit).
    """

    region: dict
    t0: pd.Timestamp  # the change (first exposure), floored to the grain
    onset: pd.Timestamp  # where the effect starts (>= t0)
    window: tuple[pd.Timestamp, pd.Timestamp]  # the total's window [onset, end)
    series: pd.DataFrame
    total: float
    total_lo: float
    total_hi: float
    unit: str
    effect_full: float  # relative effect at full exposure, exp(delta) - 1
    r2_pre: float  # the model's fit on the pre-period (explained deviance)
    explained_share: float | None = None  # of (observed - seasonal baseline) in the scope
    sql: str = field(default="", repr=False)

    @property
    def lag(self) -> pd.Timedelta:
        return self.onset - self.t0

    def series_records(self) -> list[dict]:
        s = self.series
        return [{"ts": _iso(t), "observed": _r(o), "counterfactual": _r(c), "lo": _r(a),
                 "hi": _r(b)} for t, o, c, a, b in
                zip(s["ts"], s["observed"], s["counterfactual"], s["lo"], s["hi"])]

    def total_dict(self) -> dict:
        hours = (self.window[1] - self.window[0]) / pd.Timedelta("1h")
        return {"estimate": _r(self.total), "lo": _r(self.total_lo), "hi": _r(self.total_hi),
                "unit": self.unit, "window": [_iso(self.window[0]), _iso(self.window[1])],
                "hours": _r(hours)}

    def to_dict(self) -> dict:
        return {"scope": dict(self.region), "change": _iso(self.t0), "onset": _iso(self.onset),
                "lag_hours": _r(self.lag / pd.Timedelta("1h")),
                "effect_at_full_exposure": _r(self.effect_full), "r2_pre": _r(self.r2_pre),
                "explained_share_in_scope": _r(self.explained_share),
                "method": "regression on unexposed traffic (synthetic-control style), "
                          "hour-of-day seasonality, onset and dose-aware effect",
                "series": self.series_records(), "total": self.total_dict(),
                **({"sql": self.sql} if self.sql else {})}  # show me the query (issue 17)

    def evidence(self) -> str:
        """The ledger line: total effect in the scope, its window, onset and share."""
        t = self.total_dict()
        lag = self.lag / pd.Timedelta("1h")
        share = ("" if self.explained_share is None
                 else f"; {self.explained_share:.0%} of the divergence there")
        obs = self.series.loc[self.series["ts"] >= self.onset]
        o, c = obs["observed_num"].sum(), obs["counterfactual_num"].sum()
        return (f"counterfactual in {fmt_filter(self.region)}: the change moved {self.unit} "
                f"by {self.total:+,.0f} (95% CI {self.total_lo:+,.0f}..{self.total_hi:+,.0f}) "
                f"over {t['hours']:.0f} h from {_iso(self.onset)} "
                + (f"(effect {lag:.0f} h after the change) " if lag else "")
                + f"({o:,.0f} observed, {c:,.0f} without the change; effect at full exposure "
                f"{self.effect_full:+.1%}){share}")


@dataclass(frozen=True)
class Counterfactual:
    """What the metric would have been without the change.

    ``timeline`` has one row per bucket: ``ts, observed, counterfactual,
    counterfactual_low, counterfactual_high, baseline`` for the total metric,
    ``exposed_num`` (the scope's numerator), ``removed_num`` (what the change
    took or added), ``dose`` (exposed share), and ``scope_observed,
    scope_counterfactual, scope_baseline``: the same inside the change's
    scope, where the effect is undiluted. ``baseline`` is the seasonal
    expectation (same hour one and two weeks earlier), for comparison. ``impact`` is the change of
    the metric's numerator (conversions, sessions...) the change caused over
    the divergence window, with its interval.

    ``scoped`` is the counterfactual of :func:`scope_counterfactual` (the
    metric without the change in the divergence's scope, per bucket with its
    band, aware of lag, ramp and seasonality); when present, ``to_dict`` adds
    its keys (``series``, ``total``, ``onset``, ``scope``...) and
    ``explained_share`` is measured in that scope.
    """

    timeline: pd.DataFrame
    window: tuple[pd.Timestamp, pd.Timestamp]
    impact: float
    impact_low: float
    impact_high: float
    numerator: str
    observed: float  # the metric over the window
    counterfactual: float  # the metric over the window without the change
    baseline: float | None  # the seasonal expectation over the window
    explained_share: float | None  # share of the divergence (observed - baseline) removed
    scoped: ScopeCounterfactual | None = None  # in the divergence's scope, lag and ramp aware

    def to_frame(self) -> pd.DataFrame:
        return self.timeline

    def to_dict(self) -> dict:
        return {"window": [_iso(self.window[0]), _iso(self.window[1])],
                "impact": _r(self.impact), "impact_low": _r(self.impact_low),
                "impact_high": _r(self.impact_high), "numerator": self.numerator,
                "observed": _r(self.observed), "counterfactual": _r(self.counterfactual),
                "baseline": _r(self.baseline), "explained_share": _r(self.explained_share),
                **({} if self.scoped is None else self.scoped.to_dict())}




def counterfactual(tab: UnitTable, coef: float, ci: tuple[float, float], *, con, sp, metric,
                   onset: pd.Timestamp, end: pd.Timestamp, grain: pd.Timedelta,
                   scope: dict | None = None, slice: dict | None = None) -> Counterfactual:
    """Remove the estimated effect from the exposed cells after the change.

    The exposed numerator in bucket ``t`` is divided by ``exp(coef * dose_t)``
    (a staged rollout is scaled by its exposed share); the denominator is
    kept. The interval uses the ends of the coefficient's interval. The
    timeline in the divergence's scope (``slice`` narrows the cause's
    ``scope``) is :func:`scope_counterfactual`'s, attached as ``scoped``; the
    share of the divergence the change explains is then measured there, not
    on the total.
    """
    from ..store.queries import metric_series

    df = tab.frame
    g = df.groupby("ts")
    tot = g[["num", "den"]].sum()
    ex = df[df["exposed"] == 1].groupby("ts")[["num"]].sum().reindex(tot.index, fill_value=0.0)
    dose = df[df["exposed"] == 1].groupby("ts")["dose"].max().reindex(tot.index, fill_value=0.0)
    ratio = metric.kind == "ratio"

    def cf_num(c: float) -> pd.Series:
        return tot["num"] - ex["num"] + ex["num"] / np.exp(c * dose)

    def value(num: pd.Series) -> pd.Series:
        return num / tot["den"] if ratio else num

    def value_in(num: pd.Series, den: pd.Series) -> pd.Series:
        return num / den if ratio else num

    def seasonal(filt: dict | None) -> pd.DataFrame:
        """The same bucket one and two weeks earlier (the seasonal baseline)."""
        ser = metric_series(con, sp, metric, filter=filt,
                            start=tab.pre_start - pd.Timedelta("14D"),
                            end=tab.end).frame.set_index("ts")[["num", "den"]]
        shifted = [ser.shift(freq=pd.Timedelta(days=7 * k)) for k in (1, 2)]
        return pd.concat(shifted).groupby(level=0).mean().reindex(tot.index)

    base = seasonal(None)
    base_val = base["num"] / base["den"] if ratio else base["num"]
    ex_den = df[df["exposed"] == 1].groupby("ts")["den"].sum().reindex(tot.index)
    scope_base = seasonal(scope) if scope else base

    lo_c, hi_c = ci
    cf, cf_a, cf_b = cf_num(coef), cf_num(lo_c), cf_num(hi_c)
    timeline = pd.DataFrame({
        "ts": tot.index, "observed": value(tot["num"]).to_numpy(),
        "counterfactual": value(cf).to_numpy(),
        "counterfactual_low": np.minimum(value(cf_a), value(cf_b)).to_numpy(),
        "counterfactual_high": np.maximum(value(cf_a), value(cf_b)).to_numpy(),
        "baseline": base_val.to_numpy(), "exposed_num": ex["num"].to_numpy(),
        "removed_num": (tot["num"] - cf).to_numpy(), "dose": dose.to_numpy(),
        "scope_observed": value_in(ex["num"], ex_den).to_numpy(),
        "scope_counterfactual": value_in(ex["num"] / np.exp(coef * dose), ex_den).to_numpy(),
        "scope_baseline": value_in(scope_base["num"], scope_base["den"]).to_numpy()})
    timeline = timeline.reset_index(drop=True)

    w0, w1 = utc(onset), utc(end) + grain
    inw = (tot.index >= w0) & (tot.index < w1)
    num_o = float(tot["num"][inw].sum())
    den_o = float(tot["den"][inw].sum()) if ratio else 1.0
    imp = [num_o - float(x[inw].sum()) for x in (cf, cf_a, cf_b)]
    obs_m = num_o / den_o if den_o else float("nan")
    cf_m = float(cf[inw].sum()) / den_o if den_o else float("nan")
    bw = base[inw].dropna()
    base_m = None
    if len(bw):
        base_m = float(bw["num"].sum() / bw["den"].sum()) if ratio else \
            float(bw["num"].sum()) * inw.sum() / len(bw)
    share = None
    if base_m is not None and obs_m != base_m:
        share = float((obs_m - cf_m) / (obs_m - base_m))
    scoped = scope_counterfactual(con, sp, metric, scope=scope, slice=slice,
                                  t0=min(tab.first_dose, tab.t0), end=end, grain=grain,
                                  schedule=tab.schedule) if scope else None
    if scoped is not None:
        share = scoped.explained_share
    return Counterfactual(timeline=timeline, window=(w0, w1), impact=imp[0],
                          impact_low=min(imp[1], imp[2]), impact_high=max(imp[1], imp[2]),
                          numerator=metric.numerator, observed=obs_m, counterfactual=cf_m,
                          baseline=base_m, explained_share=share, scoped=scoped)




def _r(x, nd: int = 6):
    if x is None:
        return None
    x = float(x)
    return round(x, nd) if np.isfinite(x) else None


def region_of(scope: dict | None, slice: dict | None) -> dict:
    """The cause's scope narrowed to the divergence's slice when the slice lies inside it.

    Values are compared as sets; a key of the slice the scope does not constrain
    narrows it (``{region: EU}`` and ``{country: FR}`` give both). A slice that
    contradicts the scope (no common value) leaves the scope as it is.
    """
    out = dict(scope or {})
    for k, v in (slice or {}).items():
        sv = set(v) if isinstance(v, list) else {v}
        if k not in out:
            out[k] = v
            continue
        cur = set(out[k]) if isinstance(out[k], list) else {out[k]}
        both = sorted(cur & sv, key=str)
        if not both:
            return dict(scope or {})
        out[k] = both[0] if len(both) == 1 else both
    return out


def _transform(num: np.ndarray, den: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Log metric and its weight (inverse variance up to a constant) per bucket."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "rate":  # conversions / sessions: log((num + .5) / den), var ~ 1 / num
            return np.log((num + 0.5) / den), num + 0.5
        if kind == "ratio":  # latency sum / sessions: var ~ 1 / den
            return np.log(num / den), den
        return np.log(np.clip(num, 0.0, None) + 0.5), np.clip(num, 0.0, None) + 0.5


def _design(ts: pd.DatetimeIndex, x: np.ndarray, grain: pd.Timedelta,
            origin: pd.Timestamp) -> tuple[np.ndarray, list[str]]:
    cols, names = [np.ones(len(ts)), x, np.asarray((ts - origin) / pd.Timedelta("1D"), dtype=float)], \
        ["const", "donor", "trend"]
    cols.append(np.asarray(ts.day_of_week >= 5, dtype=float))
    names.append("weekend")
    if grain < pd.Timedelta("1D"):
        per_day = int(pd.Timedelta("1D") / grain)
        slot = np.asarray((ts - ts.normalize()) // grain).astype(int) % per_day
        for k in range(1, per_day):
            cols.append((slot == k).astype(float))
            names.append(f"slot{k}")
    return np.column_stack(cols), names


def _onset(e: np.ndarray, w: np.ndarray, d: np.ndarray, ok: np.ndarray, n_cand: int,
           scale: float, chi2: float) -> tuple[int, float]:
    """Index of the earliest plausible onset among the first ``n_cand`` post buckets, and delta.

    For each candidate onset k the gap ``e`` after it is fitted by ``delta * d``
    (weighted); the reduction of the weighted squared error is ``S_ed^2 / S_dd``.
    """
    wed = np.where(ok, w * e * d, 0.0)
    wdd = np.where(ok, w * d * d, 0.0)
    s_ed = np.cumsum(wed[::-1])[::-1]
    s_dd = np.cumsum(wdd[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(s_dd > 0, s_ed ** 2 / s_dd, 0.0)[:max(n_cand, 1)]
    best = float(gain.max()) if len(gain) else 0.0
    k = int(np.argmax(gain >= best - chi2 * scale)) if len(gain) else 0
    delta = float(s_ed[k] / s_dd[k]) if len(s_dd) and s_dd[k] > 0 else 0.0
    return k, delta


def scope_counterfactual(con, sp, metric, *, scope: dict | None, slice: dict | None,
                         t0, end, grain, schedule=None,
                         config: CounterfactualConfig | None = None) -> ScopeCounterfactual | None:
    """The metric in the divergence's scope without the change, per bucket, and its total effect.

    Parameters
    ----------
    con, sp, metric:
        The store's connection, the stored passport and the metric's spec.
    scope:
        The change's scope (``{}`` or None: everywhere, then there is no
        unexposed traffic and the answer is None).
    slice:
        The slice the divergence was localized to (narrows the region).
    t0:
        The change's time (the first exposure of a staged rollout).
    end:
        The divergence's last bucket (inclusive): the total runs to its end.
    grain:
        The passport's time grain.
    schedule:
        ``((bucket, exposed share), ...)`` steps of a staged rollout (see
        :func:`workbench.causal._table.dose_schedule`); None: full exposure.

    Returns
    -------
    ScopeCounterfactual or None
        None when there is nothing to compare with (a global change, no
        traffic in the region, too short a pre-period).

    Examples
    --------
    >>> cf = scope_counterfactual(st.con, sp, spec, scope={"platform": "ios"}, slice=None,
    ...                           t0="2026-11-18T14:00Z", end="2026-11-20T23:00Z",
    ...                           grain="1h")                          # doctest: +SKIP
    >>> cf.total_dict()["estimate"] < 0                                 # doctest: +SKIP
    True
    """
    from statsmodels.genmod.families import Poisson
    from statsmodels.genmod.generalized_linear_model import GLM

    from ..store.queries import metric_series

    cfg = config or CounterfactualConfig()
    if not scope:
        return None
    grain = pd.Timedelta(grain)
    t0 = utc(t0).floor(grain)
    stop = utc(end).floor(grain) + grain
    if stop <= t0:
        stop = t0 + grain
    start = t0 - cfg.pre
    region = region_of(scope, slice)
    tgt = metric_series(con, sp, metric, filter=region, start=start, end=stop)
    don = metric_series(con, sp, metric, filter=scope, negate=True, start=start, end=stop)
    idx = pd.date_range(start, stop, freq=grain, inclusive="left")
    a = tgt.frame.set_index("ts")[["num", "den"]].reindex(idx)
    b = don.frame.set_index("ts")[["num", "den"]].reindex(idx)
    if metric.kind == "ratio":
        tot_num, tot_den = a["num"].sum(), a["den"].sum()
        kind = "rate" if tot_den > 0 and tot_num <= tot_den else "ratio"
    else:
        kind = "sum"
    num = a["num"].to_numpy(float)
    den = a["den"].to_numpy(float) if kind != "sum" else np.ones(len(idx))
    x, _ = _transform(b["num"].to_numpy(float), b["den"].to_numpy(float), kind)
    ok = np.isfinite(num) & (num >= 0) & np.isfinite(x) & np.isfinite(den) & (den > 0)
    pre = ok & (idx < t0)
    X, _names = _design(idx, np.where(np.isfinite(x), x, 0.0), grain, start)
    keep = [j for j in range(X.shape[1]) if (j == 0 or np.ptp(X[pre, j]) > 0)
            and (cfg.trend or _names[j] != "trend")] if pre.any() else []
    if pre.sum() < len(keep) + 24 or not (ok & (idx >= t0)).any():
        return None
    X = X[:, keep]
    offset = np.log(np.where(den > 0, den, 1.0))
    fit = GLM(num[pre], X[pre], family=Poisson(), offset=offset[pre]).fit(scale="X2")
    phi = float(fit.scale)
    cov = np.asarray(fit.cov_params())
    cf_num = np.exp(X @ fit.params + offset)  # the numerator without the change
    var_par = np.einsum("ij,jk,ik->i", X, cov, X)  # of its log
    var_num = phi * cf_num + cf_num ** 2 * var_par  # a bucket's no-change numerator
    z = _z(cfg.alpha)
    resid = (num[pre] - cf_num[pre]) / np.sqrt(phi * cf_num[pre])
    rho = float(np.clip(np.corrcoef(resid[1:], resid[:-1])[0, 1], 0.0, 0.9)) \
        if len(resid) > 3 else 0.0
    infl = (1 + rho) / (1 - rho)

    # onset and effect at full exposure (dose-aware, lag searched after t0), on the log
    # scale with the Poisson weights (variance of a log count ~ 1 / (phi * count))
    post = idx >= t0
    dose = _dose(idx, t0, schedule)
    n_cand = int(cfg.max_lag / grain) + 1
    e = np.log((np.where(ok, num, 0.0) + 0.5) / (cf_num + 0.5))
    k, delta = _onset(e[post], ((cf_num + 0.5) / phi)[post], dose[post], ok[post],
                      n_cand, 1.0, cfg.lag_chi2)
    onset = idx[post][k]
    win = (idx >= onset) & (idx < stop) & ok
    obs_num = num
    total = float(np.sum(obs_num[win] - cf_num[win]))
    g = cf_num[win]
    var_tot = infl * (float(g @ (X[win] @ cov @ X[win].T) @ g) + float(np.sum(phi * g)))
    half = z * np.sqrt(var_tot)
    r2 = 1.0 - fit.deviance / fit.null_deviance if fit.null_deviance > 0 else float("nan")

    # the seasonal baseline in the scope (same bucket one and two weeks earlier) dates
    # the divergence the change is asked to explain
    base_num = _seasonal_num(a, den, kind, grain)
    gap = float(np.nansum((obs_num - base_num)[win]))
    share = total / gap if gap and np.isfinite(gap) else None

    show = (idx >= t0 - cfg.context)
    val = (lambda n: n / den) if kind != "sum" else (lambda n: n)
    series = pd.DataFrame({
        "ts": idx[show], "observed": val(obs_num)[show], "counterfactual": val(cf_num)[show],
        "lo": val(np.clip(cf_num - z * np.sqrt(var_num), 0.0, None))[show],
        "hi": val(cf_num + z * np.sqrt(var_num))[show], "dose": dose[show],
        "observed_num": obs_num[show], "counterfactual_num": cf_num[show]})
    series.loc[~ok[show], ["observed", "observed_num"]] = np.nan
    return ScopeCounterfactual(
        region=region, t0=t0, onset=onset, window=(onset, stop), series=series.reset_index(
            drop=True), total=total, total_lo=total - half, total_hi=total + half,
        unit=metric.numerator, effect_full=float(np.expm1(delta)),
        r2_pre=r2, explained_share=share,
        sql=tgt.sql + ";\n" + don.sql)


def _seasonal_num(a: pd.DataFrame, den: np.ndarray, kind: str, grain) -> np.ndarray:
    """The numerator the same bucket one and two weeks earlier implies (at today's traffic)."""
    lag = [int(pd.Timedelta(days=7 * k) / grain) for k in (1, 2)]
    if kind == "sum":
        return pd.concat([a["num"].shift(k) for k in lag], axis=1).mean(axis=1).to_numpy(float)
    rate = (a["num"] / a["den"].where(a["den"] > 0)).astype(float)
    return pd.concat([rate.shift(k) for k in lag], axis=1).mean(axis=1).to_numpy(float) * den


def _dose(idx: pd.DatetimeIndex, t0: pd.Timestamp, schedule) -> np.ndarray:
    """Exposed share per bucket: 1 from ``t0`` on, or the rollout's steps."""
    d = (idx >= t0).astype(float)
    if schedule:
        d = np.zeros(len(idx))
        for ts, share in sorted(schedule):
            d[idx >= utc(ts)] = share
    return np.asarray(d, dtype=float)


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))
