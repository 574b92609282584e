"""Rate versus mix: split a ratio metric's change into rate changes and a shift of the mix.

A ratio metric over a population is a weighted mean of the slices' rates, weighted by
each slice's share of the denominator: ``R = sum_g w_g r_g``. Between a baseline
(0) and an observed window (1) it changes because rates change within slices or
because the denominator's mix moves between slices. Kitagawa's (1955) symmetric
decomposition (the two-group Oaxaca-Blinder form without a reference period) splits
the change exactly::

    R1 - R0 = sum_g (w0_g + w1_g)/2 * (r1_g - r0_g)      rate effect
            + sum_g (r0_g + r1_g)/2 * (w1_g - w0_g)      mix effect

Per slice the mix term is shown centred on the mean rate, ``(rbar_g - Rbar) * (w1_g -
w0_g)`` (same sum, as the shares' changes sum to zero): moving volume into a slice
with a rate above average raises the metric.

The answer depends on the granularity: the finer the slices, the more of the change
is mix (a shift between devices inside a country is "rate" by country and "mix" by
device). By default the granularity is chosen as the coarsest candidate (each
dimension, each pair, and all leaves when they are few) whose mix effect reaches 90%
of the largest mix effect any candidate finds: the cuboid that best explains the mix,
without splitting further than needed.

Is the rate effect real? Its standard error comes from the same per-leaf noise model
as :func:`workbench.localize.localize` (Poisson/binomial variance of the counts with
fitted over-dispersion, plus the uncertainty of the baseline rate), so a "mix shift"
verdict means the rates are stable within noise, not merely small.

Simpson's paradox is the extreme case: every slice's rate unchanged or even moving
one way while the total moves the other, entirely through the mix.

References
----------
Kitagawa, E. M. (1955) Components of a difference between two rates. JASA 50.
Oaxaca, R. (1973) Male-female wage differentials in urban labor markets. IER 14;
Blinder, A. S. (1973) Wage discrimination: reduced form and structural estimates. JHR 8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from workbench.errors import UsageError
from workbench.localize import _noise
from workbench.localize._cube import combine_codes, prepare_leaves
from workbench.localize.search import leaf_noise

__all__ = ["RateMixConfig", "RateMixResult", "decompose_rate_mix"]


@dataclass(frozen=True)
class RateMixConfig:
    """Tuning of :func:`decompose_rate_mix`.

    Parameters
    ----------
    alpha
        Significance level of the test of the rate effect.
    mix_majority
        The mix must carry at least this share of the change for a ``"mix_shift"`` hint.
    rate_small
        ...and the rate effect must be at most this share of the change (in absolute
        value) and not significant.
    max_leaves_for_full
        Consider all leaves as the granularity when there are at most this many.
    mix_tolerance
        Choose the coarsest granularity whose mix effect reaches this fraction of the
        largest one.
    n_slices
        Slices listed in :meth:`RateMixResult.to_dict` (the frame holds all).
    """

    alpha: float = 0.05
    mix_majority: float = 0.5
    rate_small: float = 0.25
    max_leaves_for_full: int = 500
    mix_tolerance: float = 0.9
    n_slices: int = 20


@dataclass(frozen=True, eq=False)
class RateMixResult:
    """Result of :func:`decompose_rate_mix`.

    Attributes
    ----------
    baseline, observed
        The ratio over all leaves in each period.
    total_change
        ``observed - baseline`` = ``rate_effect + mix_effect``.
    rate_effect, mix_effect
        Kitagawa components at ``granularity``.
    mix_share
        ``mix_effect / total_change`` (NaN when nothing changed).
    rate_z, rate_p_value
        Test of the rate effect against zero.
    granularity
        The dimensions the slices are defined by.
    per_slice
        One row per slice: shares, rates and its rate and mix contributions.
    verdict_hint
        ``"mix_shift"`` when the rates are stable (rate effect small and not
        significant) and the mix carries most of the change; ``"rate"`` otherwise.
    candidates
        Every granularity tried with its rate and mix effects.
    """

    baseline: float
    observed: float
    total_change: float
    rate_effect: float
    mix_effect: float
    mix_share: float
    rate_z: float
    rate_p_value: float
    granularity: tuple
    verdict_hint: str
    per_slice: pd.DataFrame = field(repr=False)
    candidates: pd.DataFrame = field(repr=False)
    config: RateMixConfig = field(default_factory=RateMixConfig, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The per-slice table."""
        return self.per_slice.copy()

    def to_dict(self) -> dict:
        """JSON-serializable summary; ``slices`` lists the largest contributions."""
        def num(x):
            x = float(x)
            return x if math.isfinite(x) else None

        top = self.per_slice.head(self.config.n_slices)
        slices = []
        for _, r in top.iterrows():
            slices.append({
                "filter": {d: str(r[d]) for d in self.granularity},
                "base_share": num(r["base_share"]), "obs_share": num(r["obs_share"]),
                "base_rate": num(r["base_rate"]), "obs_rate": num(r["obs_rate"]),
                "rate_contribution": num(r["rate_contribution"]),
                "mix_contribution": num(r["mix_contribution"]),
            })
        return {
            "baseline": num(self.baseline), "observed": num(self.observed),
            "total_change": num(self.total_change), "rate_effect": num(self.rate_effect),
            "mix_effect": num(self.mix_effect), "mix_share": num(self.mix_share),
            "rate_z": num(self.rate_z), "rate_p_value": num(self.rate_p_value),
            "granularity": list(self.granularity), "verdict_hint": self.verdict_hint,
            "slices": slices,
        }


def _kitagawa(key, bn, bd, on, od, v):
    """Per-group Kitagawa terms for integer group ``key``; returns a dict of arrays."""
    _, inv = np.unique(key, return_inverse=True)
    g = int(inv.max()) + 1 if inv.size else 0
    s = {name: np.bincount(inv, weights=x, minlength=g)
         for name, x in (("bn", bn), ("bd", bd), ("on", on), ("od", od), ("v", v))}
    BD, OD = s["bd"].sum(), s["od"].sum()
    R0, R1 = s["bn"].sum() / BD, s["on"].sum() / OD
    w0, w1 = s["bd"] / BD, s["od"] / OD
    with np.errstate(divide="ignore", invalid="ignore"):
        r0 = np.where(s["bd"] > 0, s["bn"] / s["bd"], np.nan)
        r1 = np.where(s["od"] > 0, s["on"] / s["od"], np.nan)
    # A slice present in one period only has no rate change by construction: its whole
    # effect is mix (it entered or left the population at its own rate).
    r0 = np.where(np.isnan(r0), r1, r0)
    r1 = np.where(np.isnan(r1), r0, r1)
    r0 = np.nan_to_num(r0)
    r1 = np.nan_to_num(r1)
    wbar = (w0 + w1) / 2
    rate = wbar * (r1 - r0)
    mix = ((r0 + r1) / 2 - (R0 + R1) / 2) * (w1 - w0)
    # Variance of r1 - r0 from the leaf noise model (numerator units / observed volume).
    with np.errstate(divide="ignore", invalid="ignore"):
        var_diff = np.where(s["od"] > 0, s["v"] / s["od"] ** 2, 0.0)
    var_rate = float(np.sum(wbar ** 2 * var_diff))
    return dict(inv=inv, R0=R0, R1=R1, w0=w0, w1=w1, r0=r0, r1=r1, rate=rate, mix=mix,
                bd=s["bd"], od=s["od"], var_rate=var_rate)


def decompose_rate_mix(leaves: pd.DataFrame, *, dimensions, granularity=None,
                       config: RateMixConfig | None = None) -> RateMixResult:
    """Split a ratio metric's change into rate changes within slices and the mix shift.

    Parameters
    ----------
    leaves
        Leaves as for :func:`workbench.localize.localize`, with ``base_num``,
        ``base_den``, ``obs_num``, ``obs_den``.
    dimensions
        Dimension columns.
    granularity
        Dimensions that define the slices; ``None`` chooses them (module docstring).
    config
        :class:`RateMixConfig`.

    Returns
    -------
    RateMixResult

    Examples
    --------
    >>> import pandas as pd
    >>> leaves = pd.DataFrame({"device": ["ios", "android"],
    ...                        "base_num": [50.0, 20.0], "base_den": [1000.0, 1000.0],
    ...                        "obs_num": [25.0, 30.0], "obs_den": [500.0, 1500.0]})
    >>> rm = decompose_rate_mix(leaves, dimensions=["device"])
    >>> round(rm.rate_effect, 6), rm.verdict_hint
    (0.0, 'mix_shift')
    """
    cfg = config or RateMixConfig()
    cube = prepare_leaves(leaves, dimensions, "ratio", None)
    if cube.base_den.sum() <= 0 or cube.obs_den.sum() <= 0:
        raise UsageError("decompose_rate_mix needs a positive denominator in both periods "
                         "(columns 'base_den' and 'obs_den')")
    v = leaf_noise(cube)
    dims = list(cube.dims)
    cards = cube.cards()
    if granularity is not None:
        gran = [g for g in granularity]
        bad = [g for g in gran if g not in dims]
        if bad:
            raise UsageError(f"granularity names {bad}, which are not among dimensions {dims}")
        options = [tuple(dims.index(g) for g in gran)]
    else:
        options = [(i,) for i in range(len(dims))]
        options += [c for c in combinations(range(len(dims)), 2)]
        if cube.n <= cfg.max_leaves_for_full and len(dims) > 2:
            options.append(tuple(range(len(dims))))
    results = []
    for combo in options:
        key = combine_codes(cube.codes, cards, combo)
        k = _kitagawa(key, cube.base_num, cube.base_den, cube.obs_num, cube.obs_den, v)
        results.append((combo, k))
    if granularity is None:
        best_mix = max(abs(float(k["mix"].sum())) for _, k in results)
        # Coarsest first: fewest slices, then fewest dimensions.
        order = sorted(range(len(results)),
                       key=lambda j: (len(results[j][1]["w0"]), len(results[j][0]), j))
        pick = next(j for j in order
                    if abs(float(results[j][1]["mix"].sum())) >= cfg.mix_tolerance * best_mix)
    else:
        pick = 0
    combo, k = results[pick]
    R0, R1 = float(k["R0"]), float(k["R1"])
    total = R1 - R0
    rate_eff, mix_eff = float(k["rate"].sum()), float(k["mix"].sum())
    sd = math.sqrt(k["var_rate"]) if k["var_rate"] > 0 else 0.0
    rate_z = rate_eff / sd if sd > 0 else (0.0 if rate_eff == 0 else math.copysign(math.inf, rate_eff))
    rate_p = float(_noise.two_sided_p(np.array([rate_z]))[0]) if math.isfinite(rate_z) else 0.0
    mix_share = mix_eff / total if total != 0 else math.nan
    stable = rate_p > cfg.alpha and abs(rate_eff) <= cfg.rate_small * abs(total)
    verdict = "mix_shift" if (total != 0 and stable and mix_share >= cfg.mix_majority) else "rate"

    # Per-slice table, labelled by the granularity's dimension values.
    first = np.full(len(k["w0"]), -1, dtype=np.int64)
    first[k["inv"][::-1]] = np.arange(len(k["inv"]))[::-1]
    names = [dims[i] for i in combo]
    frame = pd.DataFrame({dims[i]: cube.labels[i][cube.codes[i][first]] for i in combo})
    frame["base_den"], frame["obs_den"] = k["bd"], k["od"]
    frame["base_share"], frame["obs_share"] = k["w0"], k["w1"]
    frame["base_rate"], frame["obs_rate"] = k["r0"], k["r1"]
    frame["rate_contribution"], frame["mix_contribution"] = k["rate"], k["mix"]
    frame["total_contribution"] = k["rate"] + k["mix"]
    frame = frame.iloc[np.argsort(-np.abs(frame["total_contribution"].to_numpy()), kind="stable")]
    frame = frame.reset_index(drop=True)
    cand = pd.DataFrame([{"granularity": "&".join(dims[i] for i in c), "n_slices": len(kk["w0"]),
                          "rate_effect": float(kk["rate"].sum()), "mix_effect": float(kk["mix"].sum())}
                         for c, kk in results])
    return RateMixResult(
        baseline=R0, observed=R1, total_change=total, rate_effect=rate_eff, mix_effect=mix_eff,
        mix_share=float(mix_share), rate_z=float(rate_z), rate_p_value=rate_p,
        granularity=tuple(names), verdict_hint=verdict, per_slice=frame, candidates=cand,
        config=cfg,
    )
