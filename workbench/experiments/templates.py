"""Experiment templates filled from a hypothesis: rollback test, dose ramp, holdout.

A ranked cause says *what* changed, *where* (its scope) and *how much* the
metric moved there. A template turns that into a controlled perturbation
(Kohavi, Tang and Xu, *Trustworthy Online Controlled Experiments*, 2020,
chapters 15 and 21 on ramping and holdouts):

``rollback``
    revert the change for a random share (the dose, 50% by default) of its
    scope; the reverted units are the treatment, the rest the control.
``dose_ramp``
    revert for 10% first, then 50% once a third of the duration has passed
    (the guardrails have had time to show harm at the small dose).
``holdout``
    keep a small share (10%) of the scope without the change for longer: the
    slow, low-risk way to measure a change that is believed fine.

Every plan carries the metric, scope, doses, guardrails, stop rules and a
duration from the power analysis (:func:`workbench.experiments.power.plan_power`)
sized for the effect the hypothesis predicts.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import UsageError
from .power import plan_power

TEMPLATES = ("rollback", "dose_ramp", "holdout")


@dataclass(frozen=True)
class ExperimentPlan:
    """A launchable experiment on one change."""

    template: str
    change_id: str
    flag: str
    metric: str
    scope: dict
    doses: tuple[tuple[int, float], ...]  # (hour from launch, percent reverted)
    guardrails: tuple[str, ...]
    stop_rules: tuple[str, ...]
    duration_hours: int
    expected_effect: float
    alpha: float
    power: dict

    @property
    def dose(self) -> float:
        return self.doses[-1][1]

    def dose_at(self, hour: int) -> float:
        return [d for h, d in self.doses if h <= hour][-1]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["doses"] = [list(x) for x in self.doses]
        return d


def flag_key(template: str, change_id: str) -> str:
    """The flag a launch writes: ``wb-rollback-chg-0431`` (lower case, no odd characters)."""
    return "wb-" + re.sub(r"[^a-z0-9-]+", "-", f"{template}-{change_id}".lower()).strip("-")


def plan_experiment(change: dict, *, template: str = "rollback", metric: str,
                    expected_effect: float, rate: float, sessions_per_hour: float,
                    dose: float | None = None, hours: int | None = None,
                    guardrails: tuple[str, ...] = (), alpha: float = 0.05) -> ExperimentPlan:
    """Fill a template for the change of a hypothesis.

    Parameters
    ----------
    change:
        The cause (``change_id`` or ``id``, ``scope``).
    expected_effect:
        Restore the hypothesis predicts (reverted minus kept) on the metric.
    rate, sessions_per_hour:
        The metric's current level and traffic in the scope (for the power analysis;
        sessions are taken as the unit of variance, ``sd = sqrt(rate (1 - rate))``).
    dose, hours:
        Override the template's dose (percent reverted) and the planned duration.

    Examples
    --------
    >>> p = plan_experiment({"change_id": "chg-1", "scope": {"platform": "ios"}},
    ...                     metric="conversion_rate", expected_effect=0.02, rate=0.03,
    ...                     sessions_per_hour=4000)
    >>> p.flag, p.dose, p.duration_hours >= 1
    ('wb-rollback-chg-1', 50.0, True)
    """
    if template not in TEMPLATES:
        raise UsageError(f"no experiment template '{template}'; templates are: "
                         + ", ".join(TEMPLATES))
    cid = str(change.get("change_id") or change.get("id"))
    final = float(dose if dose is not None else {"rollback": 50, "dose_ramp": 50,
                                                 "holdout": 10}[template])
    if not 0 < final <= 100:
        raise UsageError(f"--dose must be a percent in (0, 100], got {final:g}")
    sd = math.sqrt(max(rate * (1 - rate), 1e-12))
    pw = plan_power(expected_effect if expected_effect else sd * 0.05, sd,
                    units_per_hour=max(sessions_per_hour, 1.0), share=final / 100
                    if final < 100 else 0.5, alpha=alpha)
    duration = int(hours or max(pw.hours_sequential, 1))
    if template == "dose_ramp":
        doses = ((0, min(10.0, final)), (max(1, duration // 3), final))
    else:
        doses = ((0, final),)
    stop = (f"stop as confirmed when the always-valid {1 - alpha:.0%} interval of "
            "(reverted - kept) excludes 0 on the restoring side",
            f"stop as refuted when the evidence against the hypothesis reaches {1 / alpha:.0f}:1",
            "stop at once when a guardrail's interval shows harm",
            f"stop undecided after {duration} hours")
    return ExperimentPlan(template=template, change_id=cid, flag=flag_key(template, cid),
                          metric=metric, scope=dict(change.get("scope") or {}), doses=doses,
                          guardrails=tuple(guardrails), stop_rules=stop,
                          duration_hours=duration, expected_effect=float(expected_effect),
                          alpha=alpha, power=pw.to_dict())
