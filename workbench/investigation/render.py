"""Every text made from an investigation: CLI summary, saved-answer markdown, role stories.

One answer (:class:`~workbench.investigation.result.Investigation`, or its saved
dict) is told several ways: the table ``workbench investigate`` prints, the
lines of ``investigations show``, the markdown cells of a saved notebook, and
the story for each reader of ``users.md`` (engineer, operator, product
manager: same facts, different emphasis and vocabulary). Nothing here has a
side effect or decides anything: numbers come from the answer, advice from
:mod:`~workbench.investigation.hypothesis`, formats from :mod:`workbench._format`.
Plain templates in the manner of data-to-text systems (Reiter and Dale 1997,
"Building applied natural language generation systems"): every sentence is
filled from a fact of the answer, and nothing is claimed that it does not
support; when the verdict is not ``change`` no change is blamed.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .._format import confidence, fmt_filter, num, pct, share_meaning
from ..governance.safe import safe_markdown
from .hypothesis import advice

__all__ = ["ROLES", "ROLE_NAMES", "answer_lines", "counterfactual_sentence", "answer_markdown", "decisions_markdown", "md_escape",
           "narrate", "summary", "title_markdown"]

ROLES = ("engineer", "operator", "product manager")

_VERDICT_TEXT = {
    "change": "a change in the log caused it",
    "external": "something outside the change log moved it (no logged change explains it)",
    "data_quality": "it is an artifact of the data (missing, duplicated or late rows)",
    "mix_shift": "the traffic mix moved; every slice behaves as before",
    "none": "there is no significant divergence",
}


def _label(f) -> str:
    return fmt_filter(f, everything="everything")


def _spct(x, signed=True) -> str:
    return pct(x, "+.1%" if signed else ".0%", missing="n/a")


def _amount(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


# --------------------------------------------------------------------------- CLI
def summary(inv) -> str:
    """The readable table the CLI prints: verdict, divergence, slices, causes, quality.

    Pure: it reads the answer and returns text (showing it records nothing; the
    UI and the library record when the top cause was first shown).
    """
    d = inv.divergence
    lines = [f"Investigation of {inv.metric} in {inv.passport}", ""]
    if d.get("onset"):
        lines.append(f"Divergence: onset {d['onset']}, window {d['window'][0]} .. "
                     f"{d['window'][1]}")
        if d.get("onset_interval") and d["onset_interval"][0] != d["onset_interval"][1]:
            lines.append(f"  onset from the {d.get('onset_source', 'scan')}; the data "
                         f"alone place it in {d['onset_interval'][0]} .. "
                         f"{d['onset_interval'][1]} (95% likelihood-ratio set)")
        lines.append(f"  baseline {num(d['baseline'])} -> observed {num(d['observed'])} "
                     f"({d['relative_change']:+.1%}), score {d.get('score', 0):.1f}")
    else:
        lines.append("Divergence: none significant")
    lines.append(f"Verdict: {inv.verdict.upper()}")
    if inv.params.get("next_step"):
        lines.append(f"Next step: {inv.params['next_step']}")
    lines.append("")
    if inv.data_quality:
        lines.append("Data quality:")
        for f in inv.data_quality:
            lines.append(f"  [{f['severity']}] {f['check']}: {f['detail']}")
            if f.get("bearing"):
                lines.append(f"      -> {f['bearing']}")
        lines.append("")
    if inv.slices:
        lines.append("Slices (most explanatory first):")
        lines.append(f"  {'slice':44s} {'explained':>9s} {'baseline':>10s} {'observed':>10s}")
        for s in inv.slices[:5]:
            name = ", ".join(f"{k}={v}" for k, v in s["filter"].items()) or "(everything)"
            lines.append(f"  {name[:44]:44s} {s['explained_share']:>9.0%} "
                         f"{num(s['baseline']):>10s} {num(s['observed']):>10s}")
        lines += _share_notes(inv.slices[:5])
        lines.append("")
    if inv.rate_mix:
        rm = inv.rate_mix
        lines.append(f"Rate vs mix: rate {rm.get('rate_effect', 0):+.4g}, "
                     f"mix {rm.get('mix_effect', 0):+.4g} "
                     f"(mix share {rm.get('mix_share', 0):.0%})")
        lines.append("")
    if inv.causes:
        lines.append("Candidate causes (confidence is a posterior; the rest is "
                     f"'outside the log': {inv.external:.0%}):")
        for c in inv.causes[:5]:
            lines.append(f"  {c['confidence']:5.0%}  {c['change_id']}  {c['kind']:7s} "
                         f"{c['target']}  @ {c['ts']}")
            for e in c["evidence"]:
                lines.append(f"           - {e}")
        lines.append("")
    elif d.get("onset") and inv.verdict in ("change", "external"):
        lines.append("No change in the log near the onset.")
    if inv.similar:
        lines.append("Similar past investigations:")
        lines += [f"  {s.line()}" for s in inv.similar]
        lines.append("")
    if inv.artifact:
        lines.append(f"Artifact: {inv.artifact}")
    lines.append(f"Store: {inv.db}")
    return "\n".join(lines)


def answer_lines(a: dict) -> list[str]:
    """The saved answer in a few lines (``investigations show``)."""
    div = a.get("divergence") or {}
    lines = [f"Verdict: {str(a.get('verdict', '-')).upper()}   metric {a.get('metric')} in "
             f"{a.get('passport')}"]
    if div.get("onset"):
        rc = div.get("relative_change")
        lines.append(f"Divergence: onset {div['onset']}, {num(div.get('baseline'))} -> "
                     f"{num(div.get('observed'))}" + (f" ({rc:+.1%})" if rc is not None else ""))
    else:
        lines.append("Divergence: none significant")
    for s in (a.get("slices") or [])[:3]:
        lines.append(f"  slice {fmt_filter(s.get('filter'))}: explains "
                     f"{pct(s.get('explained_share'))}")
    for i, c in enumerate((a.get("causes") or [])[:5], 1):
        lines.append(f"  #{i} {c['change_id']} {pct(c.get('confidence'))} {c.get('kind')} "
                     f"{c.get('target')}")
    for d in a.get("decisions") or []:
        lines.append(f"  decision: {d['hypothesis']} {d['status']} by {d.get('author')}"
                     + (f": {d['note']}" if d.get("note") else ""))
    for d in a.get("actions") or []:
        lines.append(f"  action: {d['action']} {d.get('target') or ''} by {d.get('author')}")
    for d in a.get("notes") or []:
        lines.append(f"  note by {d.get('author')}: {d['text']}")
    for s in a.get("similar") or []:
        lines.append(f"  {s.get('line', s.get('investigation_id'))}")
    return lines


# --------------------------------------------------------------------------- notebook
def title_markdown(a: dict, params: dict) -> str:
    top = (a.get("causes") or [None])[0]
    div = a.get("divergence") or {}
    v = params.get("version")
    return (f"# Investigation {a.get('investigation_id') or ''}"
            + (f" (v{v:04d})" if isinstance(v, int) else "") + "\n\n"
            f"**{a.get('metric')}** in passport **{a.get('passport')}**: verdict "
            f"**{a.get('verdict')}**, onset {div.get('onset') or '-'}, top cause "
            + (f"{top['change_id']} ({top.get('kind')} {top.get('target')}) at "
               f"{top['confidence']:.0%}" if top else "none")
            + ".\n\nRun all cells to rebuild the investigation from the data; the last cell "
              "checks that it reproduces the saved ranked causes.")


def md_escape(s) -> str:
    return safe_markdown(s)  # typed text never runs in Lab (#15)


def answer_markdown(a: dict) -> str:
    """The saved answer for people: divergence, causes with evidence, slices, quality, inputs."""
    div = a.get("divergence") or {}
    out = ["## The answer as saved", ""]
    if div.get("onset"):
        rc = div.get("relative_change")
        out.append(f"**Verdict: {a.get('verdict')}.** {a.get('metric')} went from "
                   f"{num(div.get('baseline'))} to {num(div.get('observed'))}"
                   + (f" ({rc:+.1%})" if rc is not None else "")
                   + f" from {div['onset']} to {(div.get('window') or [None, None])[1]}.")
    else:
        out.append(f"**Verdict: {a.get('verdict')}.** No significant divergence of "
                   f"{a.get('metric')}.")
    causes = a.get("causes") or []
    if causes:
        out += ["", "| # | change | kind | target | at | confidence |", "|---|---|---|---|---|---|"]
        for i, c in enumerate(causes[:10], 1):
            out.append(f"| {i} | {c['change_id']} | {c.get('kind')} | {md_escape(c.get('target'))}"
                       f" | {c.get('ts')} | {c.get('confidence', 0):.0%} |")
        for c in causes[:3]:
            out += ["", f"Evidence for {c['change_id']}:"]
            out += [f"- {md_escape(e)}" for e in c.get("evidence", [])]
        if a.get("external") is not None:
            out += ["", f"Outside the log: {a['external']:.0%}."]
    slices = a.get("slices") or []
    if slices:
        out += ["", "| slice | explains | baseline | observed |", "|---|---|---|---|"]
        for s in slices[:5]:
            f = ", ".join(f"{k}={v}" for k, v in (s.get("filter") or {}).items()) or "(all)"
            out.append(f"| {md_escape(f)} | {pct(s.get('explained_share'))} | "
                       f"{num(s.get('baseline'))} | {num(s.get('observed'))} |")
        notes = [md_escape(n.strip()) for n in _share_notes(slices[:5])]
        out += ["", *notes] if notes else []
    dq = a.get("data_quality") or []
    if dq:
        out += ["", "Data quality:"]
        out += [f"- [{f.get('severity')}] {f.get('check')}: {md_escape(f.get('detail'))}"
                + (f" ({md_escape(f['bearing'])})" if f.get("bearing") else "") for f in dq]
    prov = a.get("provenance") or []
    if prov:
        out += ["", "| input | rows | sha256 | origin |", "|---|---|---|---|"]
        for p in prov:
            out.append(f"| {p.get('table')}: {p.get('path')} | {p.get('rows')} | "
                       f"`{str(p.get('sha256'))[:16]}` | {md_escape(p.get('origin') or '-')} |")
    sim = a.get("similar") or []
    if sim:
        out += ["", "Similar past investigations:"]
        out += [f"- {md_escape(s.get('line', s.get('investigation_id')))}" for s in sim]
    return "\n".join(out)


def decisions_markdown(a: dict) -> str:
    rows = ([("decision", d.get("ts"), d.get("author"),
              f"{md_escape(d['hypothesis'])} **{md_escape(d['status'])}**"
              + (f": {md_escape(d['note'])}" if d.get("note") else ""))
             for d in a.get("decisions") or []]
            + [("action", d.get("ts"), d.get("author"),
                md_escape(f"{d['action']} {d.get('target') or ''}")
                + (f": {md_escape(d['note'])}" if d.get("note") else ""))
               for d in a.get("actions") or []]
            + [("note", d.get("ts"), d.get("author"), md_escape(d.get("text")))
               for d in a.get("notes") or []])
    if not rows:
        return "## Decisions\n\nNone recorded."
    rows.sort(key=lambda r: str(r[1]))
    return "\n".join(["## Decisions", "", "| when | who | what | |", "|---|---|---|---|"]
                     + [f"| {str(t)[:19]} | {md_escape(w)} | {k} | {x} |"
                        for k, t, w, x in rows])


# --------------------------------------------------------------------------- role stories
def _when(iso: str | None) -> str:
    if not iso:
        return "n/a"
    t = pd.Timestamp(iso)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return f"{t:%Y-%m-%d %H:%M} UTC"


_conf = confidence

#: ``--role`` spellings of the command line -> :data:`ROLES`
ROLE_NAMES = {"engineer": "engineer", "operator": "operator", "pm": "product manager",
              "product manager": "product manager", "product-manager": "product manager"}


def _rounded(x: float) -> str:
    """Three significant figures with thousands separators (4,312 -> 4,310)."""
    x = abs(float(x))
    if x < 100:
        return f"{x:.2g}"
    mag = 10 ** (len(f"{x:.0f}") - 3)
    return f"{round(x / mag) * mag:,.0f}"


def _verification(inv: Any) -> dict:
    ver = getattr(inv, "verification", None)
    return (ver.to_dict() if hasattr(ver, "to_dict") else ver) or {}


def _verification_line(inv: Any) -> str | None:
    """The top cause's DoWhy verdict and the refuters it met, in one line."""
    causes = list(getattr(inv, "causes", None) or [])
    v = next((c for c in _verification(inv).get("causes") or []
              if causes and c.get("change_id") == causes[0].get("change_id")), None)
    if v is None:
        return None
    refs = ", ".join(f"{r['name'].replace('_', ' ')} {'passed' if r['passed'] else 'FAILED'}"
                     for r in v.get("refuters") or [])
    return f"{v['change_id']} {v['reason']}" + (f" ({refs})" if refs else "")


def counterfactual_sentence(inv: Any) -> str | None:
    """"Without flag X on ios 5.2, about 4,300 more conversions (3,980 to 4,620) would have
    completed over the 58 hours from ..." from the verification's counterfactual total.

    None when the answer blames no change, or its top cause has no counterfactual (not
    verified, a global change, a store without unexposed traffic). A rate's effect is the
    count of its numerator at the observed denominator.
    """
    cf = _verification(inv).get("counterfactual")
    causes = list(getattr(inv, "causes", None) or [])
    if not cf or inv.verdict != "change" or not causes \
            or causes[0].get("change_id") != cf.get("change_id"):
        return None
    c, t = causes[0], cf.get("total") or {}
    est, lo, hi = t.get("estimate"), t.get("lo"), t.get("hi")
    if est is None or lo is None or hi is None:
        return None
    more = est < 0  # the change removed some of the numerator: without it, more
    a, b = sorted((abs(lo), abs(hi))) if (lo < 0) == (hi < 0) else (0.0, max(abs(lo), abs(hi)))
    unit = t.get("unit") or "units"
    return (f"without {c.get('kind', 'change')} {c.get('target', c['change_id'])} on "
            f"{_label(cf.get('scope'))}, about {_rounded(est)} {'more' if more else 'fewer'} "
            f"{unit} ({_rounded(a)} to {_rounded(b)}) would have been counted over the "
            f"{t.get('hours') or 0:.0f} hours from {_when(cf.get('onset'))}"
            + (f" (the effect began {cf['lag_hours']:.0f} h after the change)"
               if cf.get("lag_hours") else ""))


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
    where = _label(sl["filter"]) if sl else "no single slice"
    onset = _when(d.get("onset"))
    rc = d.get("relative_change")
    decided = {x["change_id"]: x["decision"] for x in decisions or []}
    cf_line = counterfactual_sentence(inv)

    if verdict == "none" or not d.get("onset"):
        return (f"### {metric}: no significant divergence\n\n"
                f"The metric stays within its seasonal baseline band. {advice(None, 'none')}")

    lines: list[str] = []
    if role == "engineer":
        lines.append(f"### {metric} {_spct(rc)} since {onset}: "
                     f"{_VERDICT_TEXT.get(verdict, verdict)}")
        pv = d.get("p_value")
        lines.append(f"- **Divergence**: baseline {_amount(d.get('baseline'))} -> observed "
                     f"{_amount(d.get('observed'))} ({_spct(rc)}), score {d.get('score') or 0:.1f}"
                     + (f", p = {pv:.2g}" if pv is not None else "") + ".")
        if sl:
            lines.append(f"- **Where**: {where} explains {_spct(sl.get('explained_share'), False)} "
                         f"of it ({_amount(sl.get('baseline'))} -> {_amount(sl.get('observed'))}).")
        if top:
            e = top.get("effect") or {}
            lines.append(f"- **Top candidate**: {top['change_id']} ({top['kind']} {top['target']}, "
                         f"{_when(top.get('ts'))}), confidence {_conf(top['confidence'])}.")
            if e:
                lines.append("- **Effect test**: difference-in-differences "
                             f"{_spct(e.get('estimate'))} "
                             f"(95% CI {_spct(e.get('ci_low'))}..{_spct(e.get('ci_high'))}, "
                             f"t = {e.get('t_stat', 0):.1f}, {e.get('n_pre')} h before, "
                             f"{e.get('n_post')} h after; {e.get('method')}).")
            for ev in top.get("evidence", [])[:4]:
                lines.append(f"  - {ev}")
        dowhy = _verification_line(inv)
        if dowhy:
            lines.append(f"- **DoWhy verification**: {dowhy}.")
        if cf_line:
            lines.append(f"- **Counterfactual**: {cf_line}.")
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
            scope = _label(blamed.get("scope") or {})
            lines.append(f"### Roll back {blamed['kind']} {blamed['target']} on {scope}")
            lines.append(f"- **Which change**: {blamed['change_id']} at {_when(blamed.get('ts'))}"
                         f" by {(change_info or {}).get('author') or 'n/a'}, rollout "
                         + (f"{blamed['rollout']:g}%." if blamed.get("rollout") is not None
                            else "n/a."))
            lines.append(f"- **How sure**: {_conf(blamed['confidence'])}.")
            if cf_line:
                lines.append(f"- **What it costs**: {cf_line[0].upper() + cf_line[1:]}.")
        else:
            lines.append(f"### No rollback: {_VERDICT_TEXT.get(verdict, verdict)}")
        lines.append(f"- **Where**: {where}; started {onset}.")
        lines.append(f"- **Do now**: {advice(blamed, verdict, where=where)}")
        lines.append("- **Then**: watch the timeline return into the baseline band; "
                     "replay shows when the signal became clear.")
    else:  # product manager
        delta = (impact or {}).get("delta")
        hours = (impact or {}).get("hours") or 0
        lines.append(f"### {metric.replace('_', ' ').capitalize()} is down {abs(rc):.1%}"
                     if rc is not None and rc < 0 else
                     f"### {metric.replace('_', ' ').capitalize()} moved {_spct(rc)}")
        lines.append(f"- **Since** {onset}, mostly in {where}.")
        if delta is not None:
            unit = numerator or (inv.metric if inv.metric_kind == "sum" else "numerator units")
            lines.append(f"- **Impact so far**: about {_amount(abs(delta))} "
                         f"{'fewer' if delta < 0 else 'more'} {unit} than expected over "
                         f"{hours} hours.")
        if cf_line:  # what the change itself cost (the impact above is against the baseline)
            lines.append(f"- **Without the change**: {cf_line[0].upper() + cf_line[1:]}.")
        if blamed:
            lines.append(f"- **Why**: the {blamed['kind']} {blamed['target']} "
                         f"(confidence {_conf(blamed['confidence'])}).")
        else:
            lines.append(f"- **Why**: {_VERDICT_TEXT.get(verdict, verdict)}.")
        lines.append(f"- **What is being done**: {advice(blamed, verdict, where=where)}")
    if decided:
        lines.append("- **Decisions**: " + "; ".join(f"{k} {v}" for k, v in decided.items()))
    return "\n".join(lines)


def _share_notes(slices: list) -> list[str]:
    """A sentence under a slices table for each share above 100% or below 0%."""
    out = []
    for s in slices:
        note = share_meaning(s.get("explained_share"), fmt_filter(s.get("filter")))
        if note:
            out.append("  " + note[0].upper() + note[1:] + ".")
    return out
