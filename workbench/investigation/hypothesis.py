"""Hypotheses and advice: the one source of every status rule and every next step.

Each change near the onset is a hypothesis (Platt 1964, "Strong inference":
state the alternatives, run the test that tells them apart, refute). A ranked
cause gets a status (``supported`` / ``open`` / ``refuted``), the tests that
decided it, and a next step; the verdict as a whole gets one too. The CLI
summary, the saved notebook and the UI's role stories all read their advice
from here, so they cannot disagree ("revert flag X" in one, "turn flag X off"
in another).

The mix-shift rule (:func:`is_mix_shift`) follows the rate/mix decomposition
of a ratio (Kitagawa 1955; Bhagwan et al. 2014 for its use in root-cause
localization): the verdict goes by magnitudes, not significance.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .._format import fmt_filter

__all__ = ["advice", "as_hypothesis", "cause_step", "is_mix_shift", "next_step",
           "verdict_step"]

#: What to do about a supported cause, by kind of change.
_STEP_BY_KIND = {
    "flag": "revert flag {target} for {where}",
    "deploy": "roll back {target} to its previous version",
    "config": "restore the previous value of {target}",
    "infra": "revert the infrastructure change on {target}",
    "experiment": "stop experiment {target} and check its assignment (SRM)",
    "external": "communicate the impact of {target}; nothing to roll back",
}

#: What to do when the verdict is not a change of the log.
_STEP_BY_VERDICT = {
    "data_quality": ("repair the data feed for {where} (see data quality) and re-run; do not "
                     "act on the metric until then"),
    "mix_shift": ("no rollback: rates are stable; the traffic mix moved toward {where}. Report "
                  "the metric per segment, or reweight to the usual mix"),
    "external": ("no change in the log explains it: look for outside events affecting {where} "
                 "(campaigns, partners, outages) and add their source to the change log"),
    "none": "nothing to do: no significant divergence",
}

#: Said before the step of a cause the evidence does not yet support.
UNSURE = "not sure enough to act. If the evidence is confirmed: "


def _where(scope: Mapping | None) -> str:
    return fmt_filter({k: v for k, v in (scope or {}).items()}, everything="everywhere")


def cause_step(kind: str, target: str, *, where: str = "everywhere",
               rollout: float | None = None, metric: str = "the metric") -> str:
    """The action that undoes a change of ``kind`` (a staged flag is held, not reverted)."""
    if kind == "flag" and rollout is not None and rollout < 100:
        return (f"hold the rollout of {target} at {rollout:.0f}% (or set it to 0%) and "
                f"watch {metric} in {where}")
    return _STEP_BY_KIND.get(kind, "revert {target}").format(target=target, where=where)


def verdict_step(verdict: str, where: str = "the whole population") -> str:
    """What to do for a verdict that blames no change of the log."""
    return _STEP_BY_VERDICT.get(verdict, _STEP_BY_VERDICT["none"]).format(where=where)


def next_step(verdict: str, causes: list[dict], slices: list[dict], dq: list[dict], *,
              late: Any = None) -> str:
    """What to do now, for the verdict as a whole.

    ``late`` is the late tail cut from the data (:class:`workbench.quality.late.LateTail`,
    or None): the step then ends saying what may change when it arrives.
    """
    where = ", ".join(f"{k}={v}" for k, v in (slices[0]["filter"] if slices else {}).items()) \
        or "the whole population"
    if verdict == "change" and causes:
        step = causes[0]["next_step"]
    elif verdict == "external" and causes and causes[0].get("origin") == "person" \
            and causes[0].get("status") == "supported":  # a person named the outside event
        step = causes[0]["next_step"]
    elif verdict in ("data_quality", "mix_shift", "external"):
        step = verdict_step(verdict, where)
    else:
        step = verdict_step("none")
    if late is None:
        return step
    return (step + "; " if step else "") + late.message()


def advice(cause: Mapping | None, verdict: str, *, where: str = "the whole population") -> str:
    """One sentence of advice for a reader: the cause's next step, or the verdict's.

    A verdict that blames no change (``data_quality``, ``mix_shift``, ``none``)
    gets its own step, and so does the absence of a cause. A cause gets its
    hypothesis's next step (:func:`as_hypothesis`), or the undo action of its
    kind (:func:`cause_step`) prefixed with :data:`UNSURE` below 50% confidence.
    """
    if verdict in ("data_quality", "mix_shift", "none"):
        step = verdict_step(verdict, where)
    elif cause is None:
        step = verdict_step("external", where)
    else:
        status, step = cause.get("status"), cause.get("next_step")
        if status == "refuted":
            step = "nothing to undo: " + str(step).removeprefix("none: ")
        elif status != "open":
            step = step or cause_step(cause.get("kind"), cause.get("target"),
                                      where=_where(cause.get("scope")),
                                      rollout=cause.get("rollout"))
            if (cause.get("confidence") or 0) < 0.5:
                step = UNSURE + step
    return step[0].upper() + step[1:] + ("" if step.endswith(".") else ".")


def as_hypothesis(c: dict, metric: str, slices: list[dict]) -> dict:
    """Give a ranked cause its hypothesis fields: status, tests run, next step.

    ``supported`` at confidence >= 0.5; ``refuted`` when a test rules it out
    (took effect after the divergence began, the effect began before it, or its
    scope holds none of the divergence); ``open`` otherwise.
    """
    eff = c.get("effect") or {}
    tests = [{"test": "alignment", "result": f"lag {c['lag_grains']:+.0f} grains"},
             {"test": "scope", "result": f"{c['scope_share']:.0%} of the divergence, "
                                         f"{c['traffic_share']:.0%} of traffic"}]
    refuted = []
    if c["lag_grains"] < -3:
        refuted.append("took effect after the divergence began")
    if c["scope"] and c["scope_share"] <= 0.05:
        refuted.append("its scope holds none of the divergence")
    if eff:
        tests.append({"test": "difference-in-differences",
                      "result": f"{eff['estimate']:+.1%} (t={eff['t_stat']:.1f})"})
        if abs(eff.get("pre_t_stat", 0)) >= 3 and \
                abs(eff.get("pre_estimate", 0)) >= 0.5 * abs(eff["estimate"]):
            refuted.append("the effect began before the change")
            tests.append({"test": "event-study lead", "result": "pre-trend: refutes"})
        else:
            tests.append({"test": "event-study lead", "result": "no pre-trend"})
    if c["confidence"] >= 0.5:
        status = "supported"
    elif refuted or c["confidence"] < 0.01:
        refuted = refuted or ["posterior below 1%: the evidence is far weaker than for the "
                              "leading hypotheses"]
        status = "refuted"
    else:
        status = "open"
    where = ", ".join(f"{k}={v if not isinstance(v, list) else '|'.join(v)}"
                      for k, v in (c["scope"] or {}).items()) or "everywhere"
    kind, target = c["kind"], c["target"]
    if status == "supported":
        step = cause_step(kind, target, where=where, rollout=c.get("rollout"), metric=metric)
    elif status == "open":
        step = (f"run an A/B test (or a holdout) of {target} in {where} to separate it from "
                "the other candidates, or add instrumentation to the affected step")
    else:
        step = "none: " + "; ".join(refuted)
    c["status"], c["tests"], c["next_step"] = status, tests, step
    return c


def is_mix_shift(rm: Any) -> bool:
    """The mix explains the change and rates barely moved.

    At high volume a rate drift of a few percent of the change is statistically
    significant yet explains nothing; the verdict follows magnitudes: the mix
    carries at least 75% of the change and the rate effect, in the direction of
    the change, at most 25% of it (rates moving *against* the change cannot
    explain it: the mix then explains more than all of it). The localizer's own
    hint (which also asks for a non-significant rate effect) is accepted as well.
    """
    if getattr(rm, "verdict_hint", "") == "mix_shift":
        return True
    signed = float(getattr(rm, "total_change", 0.0) or 0.0)
    total = abs(signed)
    if total == 0:
        return False
    return (float(rm.mix_share) >= 0.75
            and float(rm.rate_effect) * np.sign(signed) <= 0.25 * total)
