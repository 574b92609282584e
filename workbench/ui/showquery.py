"""Show me the query (issue 17, B6) in the served UI and the notebook views.

Every finding of the answer carries the SQL that reproduces its numbers
against the store (:mod:`workbench.investigation.showsql`): the localized
slices, the causes' effect estimates, the DoWhy verification's unit table,
counterfactual and mechanism rows, and each data-quality finding. The views
show it in one way, :func:`query_disclosure`, a collapsed "Show query" block:

- a cause card: its effect's series and, once verified, the unit table
  (:mod:`workbench.ui.views_causes`);
- the slice list: the slice shown in the timeline and the listed slices that
  were localized (:func:`slice_queries`);
- the Evidence tab: each data-quality finding (:func:`quality_findings`) and the
  verification of the selected cause (:mod:`workbench.ui.verify`).

The statements are text, never executed by the UI. Governance: they read the
store's raw rows, so they are shown only to roles that may see unmasked data
(``Action.VIEW_UNMASKED``); a viewer of masked data sees the findings without them.
"""
from __future__ import annotations

import html

__all__ = ["query_disclosure", "quality_findings", "slice_queries"]

#: inline, so a statement wraps in any pane (the Evidence tab is 450 px wide)
_PRE = "white-space: pre-wrap; font-size: 11px; max-height: 320px; overflow: auto"


def query_disclosure(state, finding: dict, *, title: str = "Show query") -> str:
    """A collapsed "Show query" block of ``finding["sql"]`` (``""`` when not shown).

    Parameters
    ----------
    state : WorkbenchState
        Whose identity decides: only roles that may see raw data get the block
        (the statement reads unmasked rows).
    finding : dict
        Anything with a ``sql`` key: one statement, or ``{label: statement}``.
    title : str
        The disclosure's summary line.

    Returns
    -------
    str
        HTML (for a Markdown pane), starting with a blank line; ``""`` when there
        is no statement or the role may not see it.
    """
    from ..governance.policy import Action

    sql = finding.get("sql")
    if not sql or not state.can(Action.VIEW_UNMASKED):
        return ""
    parts = sql.items() if isinstance(sql, dict) else [("", sql)]
    body = "".join((f"<div class='wb-muted'>{html.escape(k)}</div>" if k else "")
                   + f"<pre class='wb-sql' style='{_PRE}'>{html.escape(v)}</pre>" for k, v in parts if v)
    return (f"\n\n<details class='wb-show-query'><summary>{html.escape(title)}</summary>"
            f"{body}</details>")


def slice_queries(state, listed: list[dict]) -> str:
    """"Show query" of the slice shown and of the ``listed`` slices (filters) that the
    investigation localized (the others have no statement of their own)."""
    from .data import slice_label

    d = state.data
    if d is None:
        return ""
    sql = {slice_label(s["filter"]): s["sql"] for s in d.slices
           if s.get("sql") and s.get("filter") is not None}
    shown = [slice_label(f) for f in [state.slice_filter, *listed]]
    picked = {k: sql[k] for k in dict.fromkeys(shown) if k in sql}
    return query_disclosure(state, {"sql": picked},
                            title="Show query (observed and baseline sums of "
                                  + ("this slice)" if len(picked) == 1 else "these slices)"))


def quality_findings(state) -> str:
    """Markdown of the investigation's data-quality findings, each with its "Show query"."""
    d = state.data
    if d is None:
        return ""
    found = list(d.inv.data_quality or [])
    if not found:
        return "### Data quality\nNo finding: the audit's checks passed."
    lines = ["### Data quality"]
    for f in found:
        lines.append(f"<div class='wb-quality-finding'><b>{html.escape(str(f.get('check')))}"
                     f"</b> ({html.escape(str(f.get('severity', '')))}): "
                     f"{html.escape(str(f.get('detail', '')))}</div>"
                     + query_disclosure(state, f))
    return "\n\n".join(lines)
