"""Power, minimum detectable effect and duration of an experiment.

The fixed-horizon sample size comes from statsmodels' two-sample normal power
(``statsmodels.stats.power.NormalIndPower``, Cohen's standardized effect).
Because the loop watches the readout continuously with a confidence sequence
(:mod:`workbench.experiments.sequential`), the duration is also solved for
the always-valid boundary: the first hour at which the sequence's half-width
falls below the effect sought (so that an effect of that size is declared
with the stated power's margin). That needs no library: the half-width is a
closed form and is searched over hours with numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.power import NormalIndPower

from .sequential import mixture_halfwidth


@dataclass(frozen=True)
class PowerPlan:
    """How many units and hours an experiment needs."""

    effect: float
    sd_per_unit: float
    alpha: float
    power: float
    share: float
    units_per_hour: float
    units_fixed: int
    hours_fixed: int
    hours_sequential: int
    mde_at_hours: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def plan_power(effect: float, sd_per_unit: float, *, units_per_hour: float, share: float = 0.5,
               alpha: float = 0.05, power: float = 0.8, max_hours: int = 24 * 14,
               tau: float | None = None) -> PowerPlan:
    """Units and hours to detect ``effect`` on a metric with per-unit sd ``sd_per_unit``.

    Parameters
    ----------
    effect:
        Absolute effect sought (e.g. the restore a rollback should bring).
    sd_per_unit:
        Standard deviation of a unit's (linearized) metric value.
    units_per_hour:
        New units entering the scope per hour.
    share:
        Share of units in the treated arm.

    Examples
    --------
    >>> p = plan_power(0.02, 0.2, units_per_hour=500)
    >>> p.hours_fixed <= p.hours_sequential
    True
    """
    if effect == 0 or sd_per_unit <= 0 or units_per_hour <= 0:
        raise ValueError("effect, sd_per_unit and units_per_hour must be non-zero and positive")
    ratio = (1 - share) / share
    n1 = NormalIndPower().solve_power(effect_size=abs(effect) / sd_per_unit, alpha=alpha,
                                      power=power, ratio=ratio, alternative="two-sided")
    total = float(n1) * (1 + ratio)
    hours_fixed = max(1, math.ceil(total / units_per_hour))
    hours = np.arange(1, max_hours + 1)
    n_t, n_c = hours * units_per_hour * share, hours * units_per_hour * (1 - share)
    var = sd_per_unit ** 2 * (1 / n_t + 1 / n_c)
    hw = mixture_halfwidth(var, alpha=alpha, tau=tau or abs(effect))
    ok = np.nonzero(hw < abs(effect) / 2)[0]
    hours_seq = int(hours[ok[0]]) if len(ok) else max_hours
    mde = float(mixture_halfwidth(sd_per_unit ** 2 * (1 / (hours_fixed * units_per_hour * share)
                                                      + 1 / (hours_fixed * units_per_hour
                                                             * (1 - share))),
                                  alpha=alpha, tau=tau or abs(effect)))
    return PowerPlan(effect=float(effect), sd_per_unit=float(sd_per_unit), alpha=alpha,
                     power=power, share=share, units_per_hour=float(units_per_hour),
                     units_fixed=math.ceil(total), hours_fixed=hours_fixed,
                     hours_sequential=hours_seq, mde_at_hours=mde)
