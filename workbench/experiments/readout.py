"""Readout of a two- or multi-arm experiment on a ratio metric.

Every arm is compared with the control on a ratio metric (conversions per
session, latency per request): the estimate is the difference of the arms'
ratios ``sum(y) / sum(n)``, its variance from the delta method over units
(Deng, Knoblich and Lu, "Applying the delta method in metric analytics",
KDD 2018), because sessions of one unit are not independent.

- **CUPED** (Deng, Xu, Kohavi and Walker, "Improving the sensitivity of online
  controlled experiments by utilizing pre-experiment data", WSDM 2013): the
  unit's pre-period value of the same metric, linearized the same way, is a
  control variate; ``theta = cov / var`` pooled within arms. The reduction in
  variance is reported.
- **Always valid**: the CUPED estimate also gets the normal-mixture
  confidence sequence (:mod:`workbench.experiments.sequential`), valid however
  often the readout is refreshed.
- **Bayesian**: a normal prior ``N(0, tau^2)`` on the effect and the normal
  likelihood of the estimate give the posterior and the probability that the
  treatment is better.
- **Guardrails**: other ratio metrics read the same way; a guardrail fails
  when its confidence sequence shows harm.
- Multi-arm: each arm against the control, with alpha split (Bonferroni).

Fixed-horizon p-values and intervals use ``scipy.stats.norm``; everything is
vectorized over units.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import WorkbenchError
from .sequential import mixture_halfwidth
from .srm import check_srm


class ReadoutError(WorkbenchError):
    """The experiment data cannot be read out as asked."""


@dataclass(frozen=True)
class Comparison:
    """One arm against the control."""

    arm: str
    control: str
    metric: str
    control_value: float
    arm_value: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    cuped_effect: float
    cuped_ci_low: float
    cuped_ci_high: float
    variance_reduction: float
    cuped_se: float
    seq_low: float
    seq_high: float
    prob_better: float
    posterior_mean: float
    units: dict = field(default_factory=dict)

    @property
    def relative_effect(self) -> float:
        return self.cuped_effect / self.control_value if self.control_value else float("nan")

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["relative_effect"] = self.relative_effect
        return d


@dataclass(frozen=True)
class Readout:
    """The readout of one experiment at one look."""

    experiment: str
    metric: str
    better: str
    alpha: float
    comparisons: tuple[Comparison, ...]
    guardrails: tuple[dict, ...] = ()
    srm: dict = field(default_factory=dict)

    @property
    def primary(self) -> Comparison:
        return self.comparisons[0]

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "metric": self.metric, "better": self.better,
                "alpha": self.alpha, "comparisons": [c.to_dict() for c in self.comparisons],
                "guardrails": list(self.guardrails), "srm": self.srm,
                "summary": self.summary()}

    def summary(self) -> str:
        """The readout in plain words."""
        out = []
        if self.srm.get("mismatch"):
            out.append(f"Sample-ratio mismatch (p={self.srm['p_value']:.2g}): the split is not "
                       "as designed, so the effects below are suspect.")
        sign = 1 if self.better == "higher" else -1
        for c in self.comparisons:
            rel = c.relative_effect
            moved = "raised" if c.cuped_effect > 0 else "lowered"
            if c.seq_low > 0 or c.seq_high < 0:
                good = (c.cuped_effect * sign) > 0
                verdict = ("a real improvement" if good else "a real harm")
            else:
                verdict = "not yet distinguishable from no effect"
            out.append(
                f"{c.arm} {moved} {self.metric} by {abs(c.cuped_effect):.4g} "
                f"({rel:+.1%} of {c.control}'s {c.control_value:.4g}); always-valid "
                f"{1 - self.alpha:.0%} interval {c.seq_low:+.4g}..{c.seq_high:+.4g}: {verdict}. "
                f"Chance it is better: {c.prob_better:.0%}. CUPED cut the variance by "
                f"{c.variance_reduction:.0%}.")
        bad = [g["metric"] for g in self.guardrails if g.get("failed")]
        if bad:
            out.append("Guardrail failed: " + ", ".join(bad) + ".")
        elif self.guardrails:
            out.append("Guardrails hold: " + ", ".join(g["metric"] for g in self.guardrails) + ".")
        return " ".join(out)


def _ratio_parts(y: np.ndarray, n: np.ndarray) -> tuple[float, np.ndarray]:
    """Ratio of sums and each unit's linearized contribution (delta method)."""
    tot_n = n.sum()
    if tot_n <= 0:
        return float("nan"), np.zeros_like(y, dtype=float)
    r = y.sum() / tot_n
    return float(r), (y - r * n) / n.mean()


def _arm_arrays(units: pd.DataFrame, cols: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    return (units[cols[0]].to_numpy(dtype=float), units[cols[1]].to_numpy(dtype=float))


def compare_arms(units: pd.DataFrame, *, metric: tuple[str, str], covariate=None,
                 arm: str, control: str, alpha: float, tau: float,
                 name: str = "metric") -> Comparison:
    """Compare one arm with the control (see the module docstring)."""
    a = units[units["variant"] == arm]
    c = units[units["variant"] == control]
    if len(a) < 2 or len(c) < 2:
        raise ReadoutError(f"arm '{arm}' has {len(a)} units and '{control}' {len(c)}; "
                           "at least 2 each are needed for a readout")
    ra, la = _ratio_parts(*_arm_arrays(a, metric))
    rc, lc = _ratio_parts(*_arm_arrays(c, metric))
    effect = ra - rc
    var = la.var(ddof=1) / len(la) + lc.var(ddof=1) / len(lc)
    z = stats.norm.ppf(1 - alpha / 2)
    se = float(np.sqrt(var))
    p = float(2 * stats.norm.sf(abs(effect) / se)) if se > 0 else (0.0 if effect else 1.0)
    cu_effect, cu_var = effect, var
    if covariate is not None:
        # one pre-period ratio for both arms: the covariate's mean is the same by design
        both = pd.concat([a, c])
        r0, _ = _ratio_parts(*_arm_arrays(both, covariate))
        y0a, n0a = _arm_arrays(a, covariate)
        y0c, n0c = _arm_arrays(c, covariate)
        scale = float(np.concatenate([n0a, n0c]).mean()) or 1.0
        xa, xc = (y0a - r0 * n0a) / scale, (y0c - r0 * n0c) / scale
        vx = (xa.var(ddof=1) * (len(xa) - 1) + xc.var(ddof=1) * (len(xc) - 1))
        if vx > 0:
            cov = (np.cov(la, xa)[0, 1] * (len(xa) - 1) + np.cov(lc, xc)[0, 1] * (len(xc) - 1))
            theta = cov / vx
            cu_effect = effect - theta * (xa.mean() - xc.mean())
            cu_var = ((la - theta * xa).var(ddof=1) / len(la)
                      + (lc - theta * xc).var(ddof=1) / len(lc))
    cu_se = float(np.sqrt(cu_var))
    hw = float(mixture_halfwidth(cu_var, alpha=alpha, tau=tau))
    post_var = 1.0 / (1.0 / tau ** 2 + 1.0 / max(cu_var, 1e-300))
    post_mean = post_var * cu_effect / max(cu_var, 1e-300)
    return Comparison(
        arm=arm, control=control, metric=name, control_value=rc, arm_value=ra,
        effect=float(effect), ci_low=float(effect - z * se), ci_high=float(effect + z * se),
        p_value=p, cuped_effect=float(cu_effect), cuped_ci_low=float(cu_effect - z * cu_se),
        cuped_ci_high=float(cu_effect + z * cu_se),
        variance_reduction=float(1 - cu_var / var) if var > 0 else 0.0, cuped_se=cu_se,
        seq_low=float(cu_effect - hw), seq_high=float(cu_effect + hw),
        prob_better=float(stats.norm.sf(0, loc=post_mean, scale=np.sqrt(post_var))),
        posterior_mean=float(post_mean), units={arm: int(len(a)), control: int(len(c))})


def read_experiment(units: pd.DataFrame, *, metric: tuple[str, str] = ("conversions", "sessions"),
                    covariate: tuple[str, str] | None = ("pre_conversions", "pre_sessions"),
                    control: str = "control", alpha: float = 0.05, tau: float | None = None,
                    better: str = "higher", name: str = "conversion_rate",
                    guardrails: dict[str, tuple[str, str, str]] | None = None,
                    design: dict[str, float] | None = None,
                    experiment: str = "experiment") -> Readout:
    """Read out an experiment from one row per unit.

    Parameters
    ----------
    units:
        Columns ``unit_id, variant`` and the numerator and denominator of the
        metric (and of the covariate and guardrails) summed per unit.
    metric, covariate:
        ``(numerator, denominator)`` columns; ``covariate=None`` skips CUPED.
    control:
        The control arm; every other arm is compared with it.
    tau:
        Prior scale on the effect (mixture of the sequential test and prior of
        the Bayesian readout); default: 10% of the control's value.
    guardrails:
        ``{name: (numerator, denominator, better)}``.
    design:
        Planned share per arm, for the sample-ratio check (equal if absent).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n = rng.poisson(5, 4000) + 1
    >>> df = pd.DataFrame({"unit_id": range(4000), "variant": ["control", "treatment"] * 2000,
    ...                    "sessions": n, "conversions": rng.binomial(n, 0.1)})
    >>> r = read_experiment(df, covariate=None)
    >>> r.primary.seq_low < 0 < r.primary.seq_high
    True
    """
    need = {"variant", *metric} | (set(covariate) if covariate else set())
    missing = sorted(need - set(units.columns))
    if missing:
        raise ReadoutError(f"experiment units lack column(s) {', '.join(missing)}; "
                           f"columns are: {', '.join(map(str, units.columns))}")
    arms = sorted(str(v) for v in units["variant"].unique())
    if control not in arms:
        raise ReadoutError(f"no control arm '{control}'; arms are: {', '.join(arms) or 'none'}")
    others = [a for a in arms if a != control]
    if not others:
        raise ReadoutError(f"only the control arm '{control}' has units")
    a_each = alpha / len(others)
    base = float(units.loc[units["variant"] == control, metric[0]].sum()
                 / max(units.loc[units["variant"] == control, metric[1]].sum(), 1e-300))
    tau = tau if tau is not None else max(abs(base) * 0.1, 1e-9)
    comps = tuple(compare_arms(units, metric=metric, covariate=covariate, arm=a,
                               control=control, alpha=a_each, tau=tau, name=name)
                  for a in others)
    guards = []
    for g, (num, den, g_better) in (guardrails or {}).items():
        g_tau = max(abs(control_value(units, control, num, den)) * 0.1, 1e-9)
        for a in others:
            gc = compare_arms(units, metric=(num, den), covariate=None, arm=a, control=control,
                              alpha=a_each, tau=g_tau, name=g)
            harm = gc.seq_high < 0 if g_better == "higher" else gc.seq_low > 0
            guards.append({"metric": g, "arm": a, "effect": gc.effect, "seq_low": gc.seq_low,
                           "seq_high": gc.seq_high, "failed": bool(harm)})
    srm = check_srm(units.assign(experiment=experiment)[["unit_id", "experiment", "variant"]],
                    design={experiment: design} if design else None, dimensions=[])[0]
    return Readout(experiment=experiment, metric=name, better=better, alpha=alpha,
                   comparisons=comps, guardrails=tuple(guards), srm=srm.to_dict())


def control_value(units: pd.DataFrame, control: str, num: str, den: str) -> float:
    """The control's value of a ratio (the guardrail's scale)."""
    c = units[units["variant"] == control]
    return float(c[num].sum() / max(c[den].sum(), 1e-300))
