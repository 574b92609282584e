"""The hypothesis board and the causal evidence of the workbench.

:class:`HypothesisBoard` (ranked candidate causes, confirm/refute, verify, people's
hypotheses) and :class:`CausalView` (effects, comparisons, the counterfactual and
DoWhy's verification); both re-exported by :mod:`workbench.ui.views`.
"""
from __future__ import annotations

import html

import holoviews as hv
import pandas as pd
import panel as pn
import param

from . import plots
from ._viewbase import _CARD, _CARD_SELECTED, _View, _conf, _hv, _md, _pct
from .data import slice_label
from .loop import board_line
from .narrative import next_step
from .showquery import quality_findings, query_disclosure

__all__ = ["CausalView", "HypothesisBoard"]


# ============================================================================ hypotheses
class HypothesisBoard(_View):
    """Ranked candidate causes with confidence, evidence, tests and the next step.

    Confirm or refute records the decision on the investigation (its journal in
    the library); ``j``/``k`` select the next/previous hypothesis.
    """

    max_causes = param.Integer(default=5, doc="How many candidates to show.")

    def _build(self):
        st = self.state
        self._head = _md("", margin=(0, 10))
        self._empty = _md("", visible=False)
        # Cards are created once and filled in place (see SliceExplorer: in a notebook an
        # update caused from another cell must not create models in this cell). A card is
        # one markup pane; its actions are one row for the selected card (_actions).
        self._card_ids: list[str | None] = [None] * self.max_causes
        self._card_parts = [self._make_card(i) for i in range(self.max_causes)]
        self._cards = pn.Column(self._empty, *[p["card"] for p in self._card_parts],
                                sizing_mode="stretch_width", css_classes=["wb-hypotheses"])
        actions = self._actions()
        self._decisions = _md(self._decisions_text(), css_classes=["wb-decisions"])
        st.param.watch(self._rebuild, ["data"])
        st.param.watch(self._select, ["hypothesis"])
        st.param.watch(self._on_decisions, ["decisions"])
        st.param.watch(self._on_experiment, ["experiment"])
        self._rebuild()
        from .people import hypothesis_form  # issue 17: an analyst's own hypothesis
        form = hypothesis_form(st)
        return pn.Column(self._head, self._cards, *([actions] if actions is not None else []),
                         *([form] if form is not None else []),
                         _md("#### Decisions"), self._decisions, sizing_mode="stretch_width")

    def _head_text(self) -> str:
        d = self.state.data
        if d is None:
            return "### Hypotheses\n<span class='wb-muted'>waiting for the investigation…</span>"
        ext = d.inv.external
        asof = ("" if d.as_of is None else
                f" <span class='wb-badge'>as of {d.as_of:%m-%d %H:%M}</span>")
        return (f"### Hypotheses{asof}\nVerdict **{d.inv.verdict}**"
                + (f" · outside the log: {_conf(ext)}" if ext is not None else "")
                + " <span class='wb-muted'>(j/k to move)</span>")

    def _make_card(self, i: int) -> dict:
        # One markup pane per card (head, confidence bar, and the evidence of the
        # selected one): no widget of its own (the action row acts on the selected card).
        card = _md("", margin=(4, 0), css_classes=["wb-card"], styles=dict(_CARD),
                   sizing_mode="stretch_width", visible=False)
        return {"card": card, "body": card, "head": "", "more": "", "conf": 0}

    def _actions(self):
        """One row of actions on the selected card: which card, Verify, a note, Confirm and
        Refute (each only for a role allowed to; None when none is). A served session's
        first document had a note, three buttons and their tooltips on every card (about a
        sixth of its Bokeh models); the cards are now text, the row acts on the selection."""
        from ..governance.policy import Action
        decide, verify = self.state.can(Action.CONFIRM), self.state.can(Action.VERIFY)
        self._acts: dict = {}
        if not (decide or verify):
            return None
        pick = self._acts["pick"] = pn.widgets.Select(options={}, width=200,
                                                      margin=(5, 10, 5, 0))
        pick.param.watch(self._on_pick, "value")
        rows = [[_md("**Selected:**", margin=(12, 5, 0, 0)), pick]]
        if verify:
            vb = self._acts["verify"] = pn.widgets.Button(
                label="Verify", color="primary", width=85, css_classes=["wb-verify"],
                description="Test the selected hypothesis with DoWhy (estimate, refuters, "
                            "counterfactual); the result is in the Evidence tab")
            vb.on_click(lambda ev: self.state.verify(self.state.hypothesis))
            rows[0].append(vb)
        if decide:
            note = self._acts["note"] = pn.widgets.TextInput(placeholder="note (optional)",
                                                              width=200)
            # Static tooltips (see SliceExplorer: changing one creates a model).
            ok = self._acts["ok"] = pn.widgets.Button(
                label="Confirm", color="success", width=85,
                description="Record on the investigation that the selected change caused "
                            "the divergence (disabled while replaying)")
            no = self._acts["no"] = pn.widgets.Button(
                label="Refute", color="danger", width=80,
                description="Record on the investigation that the selected change did not "
                            "cause it (disabled while replaying)")
            ok.on_click(lambda ev: self._decide("confirmed"))
            no.on_click(lambda ev: self._decide("refuted"))
            rows.append([note, ok, no])
        return pn.Column(*(pn.Row(*r, margin=0) for r in rows), css_classes=["wb-card-actions"],
                         sizing_mode="stretch_width", margin=(0, 0, 5, 0))

    def _on_pick(self, event) -> None:
        if getattr(self, "_picking", False):
            return
        if event.new is not None and event.new != self.state.hypothesis:
            self.state.hypothesis = event.new

    def _decide(self, decision: str) -> None:
        c = self.state.selected_cause
        if c is not None:
            self.state.decide(c["change_id"], decision, self._acts["note"].value)

    def _rebuild(self, *events):
        st = self.state
        self._head.object = self._head_text()
        d = st.data
        causes = d.causes[: self.max_causes] if d is not None else []
        self._empty.object = ("No candidate change: " + next_step(None, d.inv.verdict)
                              if d is not None and not causes else "")
        self._empty.visible = d is not None and not causes
        for i, parts in enumerate(self._card_parts):
            if i < len(causes):
                self._fill_card(parts, i, causes[i], d)
                self._card_ids[i] = causes[i]["change_id"]
            else:
                self._card_ids[i] = None
            parts["card"].visible = i < len(causes)
        if causes:
            st.note_shown()
        self._fill_actions()
        self._select()

    def _fill_actions(self) -> None:
        """The action row's choices (every ranked change) and whether it may act now."""
        d = self.state.data
        if not self._acts:
            return
        causes = d.causes if d is not None else []
        opts = {f"#{i + 1} {c['change_id']}": i for i, c in enumerate(causes)}
        pick = self._acts["pick"]
        if pick.options != opts:
            h = self.state.hypothesis
            self._picking = True  # new choices, not the user's pick: the selection stays
            try:
                pick.param.update(options=opts, value=h if h in opts.values() else
                                  next(iter(opts.values()), None))
            finally:
                self._picking = False
        live = d is not None and d.as_of is None and bool(causes)
        for key in ("ok", "no", "note", "verify"):
            if key in self._acts:
                self._acts[key].disabled = not live

    def _fill_card(self, parts: dict, i: int, c: dict, d) -> None:
        info = d.change(c["change_id"]) or {}
        e = c.get("effect") or {}
        tests = [f"alignment: {c.get('lag_grains', 0):+.0f} grain(s) from the onset",
                 f"scope: {_pct(c.get('scope_share'), '.0%')} of the divergence in "
                 f"{_pct(c.get('traffic_share'), '.0%')} of the traffic"]
        if e:
            tests.append(f"effect (DiD): {_pct(e.get('estimate'))} [95% CI {_pct(e.get('ci_low'))}"
                         f"..{_pct(e.get('ci_high'))}], t = {e.get('t_stat', 0):.1f}")
        ev = "\n".join(f"- {html.escape(x)}" for x in c.get("evidence", []))
        when = info.get("ts")
        when = f"{when:%Y-%m-%d %H:%M} UTC" if hasattr(when, "strftime") else c.get("ts", "")
        head = (
            f"**#{i + 1} {c['change_id']}** · {c['kind']} **{html.escape(c['target'])}** "
            f"<span class='wb-badge' title='confidence (posterior; calibrated)'>"
            f"{_conf(c['confidence'])}</span>\n\n"
            f"<span class='wb-muted'>{when} · scope "
            f"{html.escape(slice_label(c.get('scope') or {}))} · by {info.get('author', '-')}"
            f" · rollout {info.get('rollout', '-')}</span>")
        more = (f"{ev}\n\n**Tests:** " + "; ".join(tests) + "\n\n"
                f"**Next step:** {html.escape(next_step(c, d.inv.verdict))}"
                + query_disclosure(self.state, c))
        conf, test = board_line(self.state.experiment, c)
        parts["head"] = head + test + _conf_bar(conf)
        parts["more"] = more
        parts["conf"] = int(round(100 * conf))
        self._show_card(parts, i == self.state.hypothesis)

    def _on_experiment(self, *events):
        """A test's hourly update: every shown card's confidence and the tested one's status."""
        d = self.state.data
        causes = d.causes[: self.max_causes] if d is not None else []
        for i, c in enumerate(causes):
            self._fill_card(self._card_parts[i], i, c, d)

    def _select(self, *events):
        h = self.state.hypothesis
        for i, parts in enumerate(self._card_parts):
            sel = i == h
            card = parts["card"]
            classes = ["wb-card", "wb-selected"] if sel else ["wb-card"]
            if card.css_classes != classes:
                card.css_classes = classes
                card.styles = dict(_CARD_SELECTED if sel else _CARD)
            self._show_card(parts, sel)
        pick = self._acts.get("pick")
        if pick is not None and h in pick.options.values() and pick.value != h:
            pick.value = h

    @staticmethod
    def _show_card(parts: dict, selected: bool) -> None:
        """The card's text: its head, and its evidence and tests when it is selected."""
        text = parts["head"] + (f"\n\n{parts['more']}" if selected and parts["more"] else "")
        if parts["body"].object != text:
            parts["body"].object = text

    def _decisions_text(self) -> str:
        ds = self.state.decisions
        if not ds:
            return "<span class='wb-muted'>none yet</span>"
        rows = ["| change | decision | note | when | recorded in |", "|---|---|---|---|---|"]
        for x in ds:
            rows.append(f"| {x['change_id']} | **{x['decision']}** | {html.escape(x['note'])} | "
                        f"{x['at'][:19].replace('T', ' ')} | {x['recorded_in']} |")
        return "\n".join(rows)

    def _on_decisions(self, event):
        self._decisions.object = self._decisions_text()


def _conf_bar(conf: float) -> str:
    """A confidence bar in the card's markup (red from 50%), for a progress widget."""
    color = "#dc2626" if conf >= 0.5 else "#6b7280"
    return (f"\n\n<div class='wb-conf' title='confidence {conf:.0%}' style='height:6px;"
            f"background:#e5e7eb;border-radius:3px'><div style='height:6px;width:"
            f"{max(0.0, min(1.0, conf)):.0%};background:{color};border-radius:3px'></div></div>")


# ============================================================================ causal
class CausalView(_View):
    """The selected cause's verification, effect estimate and counterfactual timeline.

    The effect is the difference-in-differences estimate of the ranking
    (exposed against unexposed, log scale, HAC errors). Once the cause is
    verified (Verify, :mod:`workbench.ui.verify`) the timeline is DoWhy's
    counterfactual in the divergence's scope: observed, the metric without the
    change and its 95% band; before, the dashed line is the seasonal baseline of
    the change's scope, labelled as an expectation.
    """

    plot_width = param.Integer(default=None, allow_None=True,
                               doc="Fixed plot width in pixels (None: stretch to the column).")

    def _build(self):
        from .verify import verify_panel

        st = self.state
        self._verify = verify_panel(st)
        self._text = _md(self._summary(), css_classes=["wb-effect"])
        forest = hv.DynamicMap(pn.bind(lambda d, h: plots.effect_plot(
            d.causes if d is not None else [], h, width=self.plot_width), st.param.data,
            st.param.hypothesis))
        cf = hv.DynamicMap(pn.bind(self._cf, st.param.counterfactual, st.param.verifications,
                                   st.param.hypothesis))
        self._queries = _md(self._queries_text(), sizing_mode="stretch_width")
        self._quality = _md(quality_findings(st), css_classes=["wb-quality"],
                            sizing_mode="stretch_width")
        st.param.watch(self._refresh, ["data", "hypothesis", "counterfactual", "verifications",
                                       "verifying"])
        size = ({"sizing_mode": "fixed", "width": self.plot_width} if self.plot_width
                else {})
        return pn.Column(self._verify.panel, self._text,
                         _hv(cf, loading=st.param.counterfactual_busy, **size),
                         _hv(forest, **size), self._quality,
                         pn.Card(self._queries, title="Show the queries", collapsed=True,
                                 sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")

    def _cf(self, frame, verifications=None, hypothesis=None):
        st = self.state
        c = st.selected_cause
        metric = st.data.metric if st.data is not None else "metric"
        ts = pd.Timestamp(c["ts"]).tz_convert("UTC").tz_localize(None) if c else None
        filt = dict(c.get("scope") or {}) if c else {}
        model = self._verify.frame(c)  # DoWhy's counterfactual once verified
        if model is not None:
            return plots.counterfactual_plot(model, metric=metric, filt=filt, change_ts=ts,
                                             label=f"({c['change_id']})",
                                             width=self.plot_width, height=320,
                                             expected_label="without the change")
        return plots.counterfactual_plot(frame, metric=metric, filt=filt, change_ts=ts,
                                         label=f"({c['change_id']})" if c else "",
                                         width=self.plot_width, height=320)

    def _summary(self) -> str:
        st = self.state
        c, d = st.selected_cause, st.data
        if d is None:
            return "### Effect\n<span class='wb-muted'>waiting for the investigation…</span>"
        if c is None:
            return "### Effect\nNo candidate cause to estimate."
        e = c.get("effect")
        scope = dict(c.get("scope") or {})
        imp = d.impact(scope)
        lines = [f"### Effect of {c['change_id']} ({c['kind']} {html.escape(c['target'])})"]
        if e:
            lines.append(f"**{_pct(e['estimate'])}** (95% CI {_pct(e['ci_low'])} .. "
                         f"{_pct(e['ci_high'])}) on {d.metric} in "
                         f"{html.escape(slice_label(scope))}: difference-in-differences, "
                         f"exposed vs unexposed, {e.get('n_pre')} h before and "
                         f"{e.get('n_post')} h after ({e.get('method')}).")
        elif c.get("withheld"):  # small-cell suppression (ui.released): no number of it
            lines.append(html.escape(c["evidence"][0]))
        else:
            lines.append("No effect estimate for this change (no unexposed group to compare, "
                         "or too little data after it).")
        if imp.get("delta") is not None:
            lines.append(f"Observed {_pct(imp['observed'], '.4f')} against expected "
                         f"{_pct(imp['baseline'], '.4f')} over the {imp['hours']} h of the "
                         f"divergence in this scope: {imp['delta']:+,.0f} "
                         f"{d.spec.numerator} against the baseline.")
        if self._verify.frame(c) is None:
            lines.append("<span class='wb-muted'>The dashed line is the seasonal baseline of "
                         "the scope, shown as \"without the change\"; it is an expectation, "
                         "not a causal counterfactual model: Verify draws DoWhy's.</span>")
        return "\n\n".join(lines)

    def _queries_text(self) -> str:
        d = self.state.data
        if d is None or not d.inv.queries:
            return "no queries"
        parts = [f"Run on `{html.escape(d.db)}` (DuckDB, read-only):"]
        for k, sql in d.inv.queries.items():
            parts.append(f"**{k}**\n```sql\n{sql}\n```")
        return "\n\n".join(parts)

    def _refresh(self, *events):
        self._text.object = self._summary()
        self._queries.object = self._queries_text()
        self._quality.object = quality_findings(self.state)
        self._verify.refresh()
