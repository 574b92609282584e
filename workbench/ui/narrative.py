"""The story of an investigation for three readers: engineer, operator, product manager.

Same facts, different emphasis and vocabulary (users.md): the engineer gets the
evidence, the tests and the queries; the operator gets which change, where, and
the rollback; the product manager gets the business impact and what is being
done. Plain templates over the :class:`~workbench.investigation.Investigation`
(and the impact the workbench computed): every number in a sentence is a number
the views show, and nothing is claimed that the investigation does not support.
When the verdict is not ``change`` no change is blamed.
"""
from __future__ import annotations

from typing import Any

from .data import slice_label

__all__ = ["narrate", "next_step", "ROLES"]

ROLES = ("engineer", "operator", "product manager")

_VERDICT_TEXT = {
    "change": "a change in the log caused it",
    "external": "something outside the change log moved it (no logged change explains it)",
    "data_quality": "it is an artifact of the data (missing, duplicated or late rows)",
    "mix_shift": "the traffic mix moved; every slice behaves as before",
    "none": "there is no significant divergence",
}


def _pct(x, signed=True) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.1%}" if signed else f"{x:.0%}"


def _num(x) -> str:
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _when(iso: str | None) -> str:
    if not iso:
        return "n/a"
    import pandas as pd
    t = pd.Timestamp(iso)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _conf(x) -> str:
    """Confidence as a percentage; one decimal near certainty so 99.6% is not '100%'."""
    if x is None:
        return "n/a"
    if 0.999 < x < 1:
        return ">99.9%"
    if 0 < x < 0.001:
        return "<0.1%"
    return f"{x:.1%}" if 0.99 < x < 1 or 0 < x < 0.01 else f"{x:.0%}"


def next_step(cause: dict | None, verdict: str) -> str:
    """The suggested next action for a candidate cause (or for the verdict)."""
    if verdict == "data_quality":
        return "Fix or backfill the data before acting on the metric; re-run the investigation."
    if verdict == "mix_shift":
        return "No rollback: check where the traffic mix moved (campaigns, app-store features)."
    if verdict == "none":
        return "Nothing to do; keep watching."
    if cause is None:
        return ("Look outside the change log (partners, incidents, seasonality) and add what "
                "you find.")
    kind, target = cause.get("kind"), cause.get("target")
    scope = slice_label(cause.get("scope") or {})
    if kind == "flag":
        act = (f"Turn flag {target} off for {scope} (or hold its rollout), then watch the "
               "metric recover.")
    elif kind == "deploy":
        act = f"Roll back {target} to the previous version for {scope}."
    elif kind == "config":
        act = f"Revert config {target} for {scope}."
    elif kind == "experiment":
        act = f"Pause experiment {target} and compare its arms."
    elif kind == "infra":
        act = f"Revert the infrastructure change on {target}."
    else:
        act = f"Confirm the outside event ({target}) with its owner; no rollback possible."
    if cause.get("confidence", 0) < 0.5:
        act = ("Not sure enough to act. If the evidence is confirmed: " + act[0].lower()
               + act[1:])
    return act


def narrate(inv: Any, role: str, *, impact: dict | None = None,
            decisions: list[dict] | None = None, change_info: dict | None = None,
            numerator: str | None = None) -> str:
    """Markdown telling the investigation to ``role`` (one of :data:`ROLES`).

    Parameters
    ----------
    inv:
        An :class:`~workbench.investigation.Investigation`.
    role:
        ``engineer``, ``operator`` or ``product manager``.
    impact:
        ``InvestigationData.impact()`` of the top slice or of everything: its
        ``delta`` (numerator units over the window) makes the business impact.
    decisions:
        Confirm/refute decisions recorded so far.
    change_info:
        The change-log row of the top cause (author, description), if known.
    numerator:
        What the numerator counts (``conversions``), for the impact sentence.
    """
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    d = inv.divergence or {}
    verdict = inv.verdict
    metric = inv.metric
    top = inv.causes[0] if inv.causes else None
    blamed = top if (verdict == "change" and top is not None) else None
    sl = inv.slices[0] if inv.slices else None
    where = slice_label(sl["filter"]) if sl else "no single slice"
    onset = _when(d.get("onset"))
    rc = d.get("relative_change")
    decided = {x["change_id"]: x["decision"] for x in decisions or []}

    if verdict == "none" or not d.get("onset"):
        return (f"### {metric}: no significant divergence\n\n"
                f"The metric stays within its seasonal baseline band. {next_step(None, 'none')}")

    lines: list[str] = []
    if role == "engineer":
        lines.append(f"### {metric} {_pct(rc)} since {onset}: "
                     f"{_VERDICT_TEXT.get(verdict, verdict)}")
        pv = d.get("p_value")
        lines.append(f"- **Divergence**: baseline {_num(d.get('baseline'))} -> observed "
                     f"{_num(d.get('observed'))} ({_pct(rc)}), score {d.get('score') or 0:.1f}"
                     + (f", p = {pv:.2g}" if pv is not None else "") + ".")
        if sl:
            lines.append(f"- **Where**: {where} explains {_pct(sl.get('explained_share'), False)} "
                         f"of it ({_num(sl.get('baseline'))} -> {_num(sl.get('observed'))}).")
        if top:
            e = top.get("effect") or {}
            lines.append(f"- **Top candidate**: {top['change_id']} ({top['kind']} {top['target']}, "
                         f"{_when(top.get('ts'))}), confidence {_conf(top['confidence'])}.")
            if e:
                lines.append("- **Effect test**: difference-in-differences "
                             f"{_pct(e.get('estimate'))} "
                             f"(95% CI {_pct(e.get('ci_low'))}..{_pct(e.get('ci_high'))}, "
                             f"t = {e.get('t_stat', 0):.1f}, {e.get('n_pre')} h before, "
                             f"{e.get('n_post')} h after; {e.get('method')}).")
            for ev in top.get("evidence", [])[:4]:
                lines.append(f"  - {ev}")
        if inv.external is not None:
            lines.append(f"- **Outside the log**: {_conf(inv.external)} of the belief.")
        dq = [f for f in inv.data_quality or [] if f.get("severity") in ("warning", "error")]
        lines.append(f"- **Data quality**: {len(dq)} finding(s) at warning or worse."
                     if dq else "- **Data quality**: no finding that puts the answer at risk.")
        if inv.queries:
            lines.append(f"- **Queries**: {', '.join(sorted(inv.queries))} (see the Evidence tab "
                         "to copy them).")
    elif role == "operator":
        if blamed:
            scope = slice_label(blamed.get("scope") or {})
            lines.append(f"### Roll back {blamed['kind']} {blamed['target']} on {scope}")
            lines.append(f"- **Which change**: {blamed['change_id']} at {_when(blamed.get('ts'))}"
                         f" by {(change_info or {}).get('author') or 'n/a'}, rollout "
                         + (f"{blamed['rollout']:g}%." if blamed.get("rollout") is not None
                            else "n/a."))
            lines.append(f"- **How sure**: {_conf(blamed['confidence'])}.")
        else:
            lines.append(f"### No rollback: {_VERDICT_TEXT.get(verdict, verdict)}")
        lines.append(f"- **Where**: {where}; started {onset}.")
        lines.append(f"- **Do now**: {next_step(blamed, verdict)}")
        lines.append("- **Then**: watch the timeline return into the baseline band; "
                     "replay shows when the signal became clear.")
    else:  # product manager
        delta = (impact or {}).get("delta")
        hours = (impact or {}).get("hours") or 0
        lines.append(f"### {metric.replace('_', ' ').capitalize()} is down {abs(rc):.1%}"
                     if rc is not None and rc < 0 else
                     f"### {metric.replace('_', ' ').capitalize()} moved {_pct(rc)}")
        lines.append(f"- **Since** {onset}, mostly in {where}.")
        if delta is not None:
            unit = numerator or (inv.metric if inv.metric_kind == "sum" else "numerator units")
            lines.append(f"- **Impact so far**: about {_num(abs(delta))} "
                         f"{'fewer' if delta < 0 else 'more'} {unit} than expected over "
                         f"{hours} hours.")
        if blamed:
            lines.append(f"- **Why**: the {blamed['kind']} {blamed['target']} "
                         f"(confidence {_conf(blamed['confidence'])}).")
        else:
            lines.append(f"- **Why**: {_VERDICT_TEXT.get(verdict, verdict)}.")
        lines.append(f"- **What is being done**: {next_step(blamed, verdict)}")
    if decided:
        lines.append("- **Decisions**: " + "; ".join(f"{k} {v}" for k, v in decided.items()))
    return "\n".join(lines)
