"""The "Verify" action: DoWhy verification of one hypothesis, on demand, cached.

The served app and the notebook widgets verify a hypothesis card when asked
(:meth:`~workbench.ui.state.WorkbenchState.verify`): the investigation's own
verification when it has one for that change (the top causes, verified by
:func:`workbench.investigate` unless ``set_options(verify=False)``), else
:func:`workbench.causal.verify_cause` over the investigation's divergence (its
onset, window, direction and top slice, as ``investigate`` verifies). Results
are cached per investigation version and change, so a second click, another
session or a reload of the same version does not pay DoWhy again. The method
is :mod:`workbench.causal.verify`'s (Sharma and Kiciman 2020, DoWhy) and the
counterfactual timeline :mod:`workbench.causal.counterfactual`'s.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd

from .._format import fmt_filter

__all__ = ["VerifyAction", "cached", "investigation_key", "verification_text",
           "verify_hypothesis", "verify_panel"]

#: (investigation key, change id) -> CauseVerification; shared by every session
_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()
_MAX = 256


def investigation_key(live) -> tuple:
    """What identifies the investigation a result belongs to: its saved version, or its run."""
    inv = live.inv
    iid = getattr(inv, "investigation_id", None)
    if iid:
        return ("saved", iid, getattr(inv, "version", None), str(live.as_of))
    d = inv.divergence or {}
    return ("run", live.db, inv.metric, d.get("onset"), tuple(d.get("window") or ()),
            inv.clock.get("loaded_at") if hasattr(inv, "clock") else None, str(live.as_of))


def cached(live, change_id: str):
    """The verification of ``change_id`` already known (the investigation's or cached), or None."""
    rep = getattr(live.inv, "verification", None)
    own = rep.by_id(change_id) if rep is not None and hasattr(rep, "by_id") else None
    if own is not None:
        return own
    with _LOCK:
        return _CACHE.get((investigation_key(live), change_id))


def verify_hypothesis(live, change_id: str):
    """Verify one candidate cause of ``live`` with DoWhy (seconds; run it off the event loop).

    Parameters
    ----------
    live:
        The :class:`~workbench.ui.data.InvestigationData` shown.
    change_id:
        A candidate cause of its investigation.

    Returns
    -------
    workbench.causal.CauseVerification
    """
    from ..causal import verify_cause
    from ..errors import UsageError
    from ..store import Store

    hit = cached(live, change_id)
    if hit is not None:
        return hit
    cause = next((c for c in live.causes if c["change_id"] == change_id), None)
    if cause is None:
        raise UsageError(f"{change_id} is not a candidate cause of this investigation")
    d = live.inv.divergence or {}
    if not d.get("onset") or not d.get("window"):
        raise UsageError("no divergence to verify a cause of")
    onset, end = pd.Timestamp(d["onset"]), pd.Timestamp(d["window"][1])
    obs, base = d.get("observed"), d.get("baseline")
    direction = -1.0 if obs is not None and base is not None and obs < base else 1.0
    slice_ = live.slices[0]["filter"] if live.slices else None
    with Store(live.db, read_only=True) as st:
        v = verify_cause(st.con, live.sp, live.spec, dict(cause), onset=onset, end=end,
                         grain=live.grain, direction=direction, changes=live._changes,
                         slice=slice_)
    with _LOCK:
        if len(_CACHE) >= _MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[(investigation_key(live), change_id)] = v
    return v


def verification_text(v, *, seconds: float | None = None) -> str:
    """Markdown for the Evidence tab: the verdict, why, the refuters, the counterfactual total."""
    verdict = v.verdict.upper()
    badge = {"verified": "#1a7f37", "refuted": "#cf222e", "fragile": "#9a6700",
             "untestable": "#57606a"}.get(v.verdict, "#57606a")
    lines = [f"### DoWhy verification of {v.change_id}: "
             f"<span class='wb-verdict' style='color:{badge}'>{verdict}</span>",
             v.reason[0].upper() + v.reason[1:] + "."]
    if v.verdict == "untestable":
        lines.append("This hypothesis cannot be tested: the data hold no comparison group "
                     "for it, so no counterfactual is drawn.")
    if v.estimate is not None:
        lines.append(f"Backdoor estimate **{v.estimate:+.1%}** (95% CI {v.ci_low:+.1%} .. "
                     f"{v.ci_high:+.1%}); {v.n_cells[0]} exposed vs {v.n_cells[1]} "
                     f"unexposed cells.")
    if v.refuters:
        rows = ["| refuter | result | detail |", "|---|---|---|"]
        rows += [f"| {r.name.replace('_', ' ')} | {'passed' if r.passed else '**FAILED**'} | "
                 f"{r.detail.replace('|', '/')} |" for r in v.refuters]
        lines.append("\n".join(rows))
    cf = v.counterfactual.scoped if v.counterfactual is not None else None
    if cf is not None:
        t = cf.total_dict()
        lines.append(f"**Without the change** in {fmt_filter(cf.region)}: {cf.unit} "
                     f"{-cf.total:+,.0f} (95% CI {-cf.total_hi:+,.0f} .. {-cf.total_lo:+,.0f}) "
                     f"over the {t['hours']:.0f} h from {cf.onset:%Y-%m-%d %H:%M} UTC"
                     + (f" (the effect began {cf.lag / pd.Timedelta('1h'):.0f} h after the "
                        "change)" if cf.lag > pd.Timedelta(0) else "")
                     + ". The band is the metric without the change (95%), from the traffic "
                       "the change did not touch.")
    if seconds is not None:
        lines.append(f"<span class='wb-muted'>verified in {seconds:.1f} s</span>")
    return "\n\n".join(lines)


class VerifyAction:
    """The Verify action of :class:`~workbench.ui.state.WorkbenchState` (a mixin).

    Uses the state's ``live``, ``hypothesis``, ``verifications``, ``verifying``,
    ``message``, ``identity``, ``library``, ``authorize`` and ``_spawn``.
    """

    def verify(self, index: int | None = None) -> None:
        """Verify hypothesis ``index`` (default: the selected one) with DoWhy, off the loop.

        Authorized on the server (analyst and up; a refusal is audited and shown);
        a verification made in a served session is audited. The result goes to
        ``verifications`` (the Evidence tab shows it); see the module docstring
        for what is verified and how results are cached per investigation version.
        """
        from ..governance.policy import Action

        live = self.live
        causes = live.causes if live is not None else []
        i = self.hypothesis if index is None else int(index)
        if not 0 <= i < len(causes):
            return
        cid = causes[i]["change_id"]
        if not self.authorize(Action.VERIFY, cid):
            return
        self.hypothesis = i
        hit = cached(live, cid)
        if hit is not None:
            self.verifications = {**self.verifications, cid: hit}
            self.message = f"{cid}: {hit.verdict} (DoWhy, already verified)"
            return
        actor, audit = self.identity.name, self._in_session()
        library, t0 = self.library, time.perf_counter()

        def work():
            v = verify_hypothesis(live, cid)
            if audit:
                from ..governance.audit import append_audit
                from ..investigation.versions import audit_path
                append_audit(audit_path(library), "hypothesis.verified", actor=actor,
                             subject=cid, details={"verdict": v.verdict})
            return v

        def apply(v):
            self.verifications = {**self.verifications, cid: v}
            self.verifying = ""
            self.message = f"{cid}: {v.verdict} (DoWhy, {time.perf_counter() - t0:.1f} s)"

        def failed(exc):
            self.verifying = ""

        self.verifying = cid
        self.message = f"Verifying {cid} with DoWhy: estimate, refuters, counterfactual…"
        self._spawn(f"verify-{cid}", work, apply, failed=failed)


class _VerifyPanel:
    """The Evidence tab's verification block: a Verify button, progress, the verdict."""

    def __init__(self, state):
        import panel as pn

        from ..governance.policy import Action

        self.state = state
        self.md = pn.pane.Markdown("", css_classes=["wb-verification"],
                                   sizing_mode="stretch_width")
        self.spinner = pn.indicators.LoadingSpinner(value=False, size=20, visible=False)
        self.button = pn.widgets.Button(
            label="Verify", color="primary", width=85, css_classes=["wb-verify-evidence"],
            description="Test the selected hypothesis with DoWhy", visible=state.can(Action.VERIFY))
        self.button.on_click(lambda ev: state.verify())
        self.panel = pn.Column(pn.Row(self.button, self.spinner), self.md,
                               sizing_mode="stretch_width")
        self.refresh()

    def _selected(self):
        c = self.state.selected_cause
        return None if c is None else c["change_id"]

    def frame(self, cause) -> pd.DataFrame | None:
        """DoWhy's counterfactual of ``cause`` as the plot's frame, once verified."""
        v = None if cause is None else self.state.verifications.get(cause["change_id"])
        cf = None if v is None or v.counterfactual is None else v.counterfactual.scoped
        if cf is None:
            return None
        s = cf.series
        return pd.DataFrame({"ts": s["ts"].dt.tz_convert("UTC").dt.tz_localize(None),
                             "lower": s["lo"], "upper": s["hi"],
                             "expected": s["counterfactual"], "observed": s["observed"]})

    def refresh(self) -> None:
        st, cid = self.state, self._selected()
        busy = bool(cid) and st.verifying == cid
        self.spinner.value = self.spinner.visible = busy
        self.button.disabled = busy or cid is None or (st.data is not None
                                                       and st.data.as_of is not None)
        v = st.verifications.get(cid) if cid else None
        if busy:
            self.md.object = (f"Verifying **{cid}** with DoWhy: estimate, refuters, "
                              "counterfactual (a few seconds)…")
        elif v is not None:
            from .showquery import query_disclosure

            cf = v.counterfactual.scoped if v.counterfactual is not None else None
            self.md.object = verification_text(v, seconds=v.seconds) + query_disclosure(
                st, {"sql": {"the unit table DoWhy was given": v.sql,
                             "the counterfactual's series (scope; unexposed donors)":
                                 getattr(cf, "sql", "")}})
        else:
            self.md.object = ("" if cid is None else
                              f"**{cid}** is not verified yet: **Verify** tests it with DoWhy "
                              "(a backdoor estimate, refuters and the counterfactual timeline).")


def verify_panel(state) -> _VerifyPanel:
    """The verification block of the Evidence tab over ``state`` (see :class:`_VerifyPanel`)."""
    return _VerifyPanel(state)
