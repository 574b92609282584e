"""The workbench's views: Panel ``Viewer`` components over :class:`WorkbenchState`.

Each view takes the shared state and renders part of it; each works alone in a
notebook (``DivergenceView.from_investigation(inv)``) and they compose into
:class:`Workbench`. Views only hold widgets and plots; every action calls a
state method, so the buttons, the keyboard and the tests do the same thing.

The plots every click changes (the timeline, the slice bars) are plain Bokeh
figures whose sources are refilled in place (:mod:`workbench.ui.timeline`); the
others are HoloViews ``DynamicMap`` s. Either way an update swaps the data of the
existing figure instead of rebuilding it.
"""
from __future__ import annotations

import html

import holoviews as hv
import pandas as pd
import panel as pn
import param

from .._format import share_meaning
from . import plots
from .data import slice_label
from .keys import ClickList, KeyboardShortcuts
from .narrative import narrate
from .showquery import slice_queries
from .timeline import SliceBars, TimelineFigure, bar_columns, on_page, timeline_columns
from ._viewbase import (_CSS, _View, _after_first_paint, _conf, _hv, _lazy_tabs, _md,
                        _pct, _when, _Alert)
from .views_causes import CausalView, HypothesisBoard

__all__ = ["DivergenceView", "TimelineReplay", "SliceExplorer", "HypothesisBoard",
           "CausalView", "NarrativeView", "SearchView", "Workbench"]


# ============================================================================ timeline
class DivergenceView(_View):
    """The metric timeline: baseline band, onset, change markers, data-quality gaps.

    Hover a triangle for the change (kind, target, scope, author, rollout);
    candidate causes are the large red ones. The slice selector (or a click in
    the slice explorer) switches the timeline to a slice, with its own baseline.
    """

    show_selector = param.Boolean(default=True, doc="Show the slice selector above the plot.")
    height = param.Integer(default=420, doc="Plot height in pixels.")

    def _build(self):
        st = self.state
        self._title = _md(self._title_text(), css_classes=["wb-slice-title"],
                          margin=(0, 10), sizing_mode="stretch_width")
        self._select = pn.widgets.Select(
            label="Slice shown", options=self._slice_options(), value="everything", width=320,
            description="The slice the timeline shows; a localized slice or one dimension "
                        "value (d/u drill down and up)")
        self._select.param.watch(self._on_select, "value")
        # One plain Bokeh figure per session, its sources refilled in place (ui/timeline.py)
        self._fig = TimelineFigure(st.metric or "metric", height=self.height,
                                   cols=self._columns())
        self._pane = pn.pane.Bokeh(self._fig.figure, min_height=self.height,
                                   sizing_mode="stretch_width", loading=st.param.timeline_busy)
        st.param.watch(self._redraw, ["timeline", "hypothesis", "experiment"])
        st.param.watch(self._sync, ["slice_filter", "data", "live"])
        head = pn.Row(self._select, self._title, sizing_mode="stretch_width")
        return pn.Column(head if self.show_selector else self._title, self._pane,
                         sizing_mode="stretch_width", css_classes=["wb-divergence"])

    def _slice_options(self) -> list[str]:
        st = self.state
        opts = ["everything"]
        if st.live is not None:
            opts += [slice_label(s["filter"]) for s in st.live.slices]
            for d in st.live.dimensions:
                opts += [slice_label({d: v}) for v in st.live.values(d, limit=8)]
        cur = slice_label(st.slice_filter)
        if cur not in opts:
            opts.append(cur)
        return list(dict.fromkeys(opts))

    def _title_text(self) -> str:
        st = self.state
        if st.data is None:
            return "### Timeline\n<span class='wb-muted'>waiting for the investigation…</span>"
        asof = ("" if st.data.as_of is None else
                f" <span class='wb-badge'>as of {st.data.as_of:%Y-%m-%d %H:%M} UTC</span>")
        return (f"**Timeline of {st.data.metric} in {html.escape(slice_label(st.slice_filter))}**"
                f"{asof} <span class='wb-muted'>· hover a triangle for a change · click a "
                "slice below to drill down</span>")

    def _sync(self, *events):
        self._title.object = self._title_text()
        opts = self._slice_options()
        cur = slice_label(self.state.slice_filter)
        if self._select.options != opts:
            self._select.options = opts
        if self._select.value != cur:
            self._select.value = cur

    def _on_select(self, event):
        from .data import parse_slice
        filt = parse_slice(event.new)
        if filt != self.state.slice_filter:
            self.state.drill_to(filt)

    def _redraw(self, *events) -> None:
        """Put the shown slice's columns in the figure (in place: no model is created)."""
        on_page(self._pane, self._fig.figure, self._fig.show, self._columns())

    def _columns(self) -> dict:
        """What the timeline shows now (shared by every session showing the same)."""
        st = self.state
        data, live, timeline = st.data, st.live, st.timeline
        if data is None or timeline is None or live is None:
            return timeline_columns(None, metric=st.metric or "metric")
        filt = timeline.attrs.get("filter", st.slice_filter)
        if sorted(filt.items()) == sorted(st.slice_filter.items()):
            filt = st.slice_filter  # same slice: keep the order the user picked
        start, end = live.data_range()
        end = end.tz_localize(None) + live.grain
        arms = plots.arm_frame(st.experiment)
        if len(arms):  # a running test: the days before it and its hours
            end = max(end, arms["ts"].max())
        xlim = (max(end - pd.Timedelta(days=7), start.tz_localize(None)), end)
        cause = st.selected_cause
        onset = data.onset.tz_localize(None) if data.onset is not None else None
        now = data.as_of.tz_localize(None) if data.as_of is not None else None
        highlight = cause["change_id"] if cause else None

        def make():
            return timeline_columns(timeline, metric=data.metric, filt=filt,
                                    changes=data.changes(), gaps=data.gaps(), onset=onset,
                                    now=now, xlim=xlim, highlight=highlight, arms=arms)
        if len(arms):  # a running test's hours belong to this session alone
            return make()
        # One set of columns per slice and hypothesis for all sessions (data.shared_plot).
        return data.shared_plot(("timeline", tuple(filt.items()), highlight, xlim),
                                timeline, make)


# ============================================================================ replay
class TimelineReplay(_View):
    """Play or step through time: every view shows what the analysis said then.

    Each step re-runs the whole investigation on the data cut at that moment
    (events before it, changes made by then), computed in the background and
    cached; the status says how many steps are ready.
    """

    period_ms = param.Integer(default=1500, doc="Time between steps while playing.")

    def _build(self):
        st = self.state
        self._cb = None
        # No hover tooltips on this row: a button's tooltip opened to its right over the
        # next buttons and kept them from a click (the header lists "space play")
        back = pn.widgets.Button(label="◀ Step", width=80)
        self._play = pn.widgets.Button(label="▶ Play", width=90, color="primary")
        fwd = pn.widgets.Button(label="Step ▶", width=80)
        live = pn.widgets.Button(label="Now (all data)", width=120)
        back.on_click(lambda e: st.step_replay(-1))
        fwd.on_click(lambda e: st.step_replay(+1))
        self._play.on_click(lambda e: st.toggle_play())
        live.on_click(lambda e: st.go_live())
        self._label = _md(self._text(), css_classes=["wb-replay-label"],
                          margin=(0, 10), sizing_mode="stretch_width")
        st.param.watch(self._refresh, ["replay_index", "replay_ready", "replay_busy", "data",
                                       "replay_steps"])
        st.param.watch(self._on_playing, "playing")
        self._spinner = pn.indicators.LoadingSpinner(value=False, size=20,
                                                     visible=st.param.replay_busy)
        return pn.Row(_md("**Replay**", margin=(0, 5)), back, self._play, fwd,
                      live, self._spinner, self._label, sizing_mode="stretch_width",
                      css_classes=["wb-replay"])

    def _text(self) -> str:
        st = self.state
        n = len(st.replay_steps)
        if not n:
            return "<span class='wb-muted'>replay needs the passport directory</span>"
        i = st.replay_index
        pos = "now" if i < 0 else f"step {i + 1}/{n}"
        d = st.data
        said = ""
        if d is not None:
            top = d.causes[0]["change_id"] if d.causes else "no cause"
            said = f" · verdict **{d.inv.verdict}**, {top}"
        busy = " · computing…" if st.replay_busy else ""
        return (f"{pos}: **{st.replay_label()}**{said}{busy} "
                f"<span class='wb-muted'>({st.replay_ready}/{n} steps ready)</span>")

    def _refresh(self, *events):
        self._label.object = self._text()

    def _on_playing(self, event):
        self._play.label = "⏸ Pause" if event.new else "▶ Play"
        if event.new and self._cb is None:
            self._cb = pn.state.add_periodic_callback(self.state.tick, period=self.period_ms)
        elif not event.new and self._cb is not None:
            self._cb.stop()
            self._cb = None
        self._refresh()


# ============================================================================ slices
class _Gate(param.Parameterized):
    """Redraw counters of the lazily drawn plots of :class:`SliceExplorer`."""

    heat = param.Integer(default=0)
    mix = param.Integer(default=0)


class SliceExplorer(_View):
    """Ranked slices (table, bars, heatmap), side-by-side comparison, rate vs mix.

    Click a row, a bar or a heatmap cell to drill down: the timeline shows that
    slice. ``d``/``u`` drill down into the top slice and back up.
    """

    max_rows = param.Integer(default=10, doc="Slices listed.")

    def _build(self):
        st = self.state
        self._crumbs = _md(self._crumb_text(), css_classes=["wb-crumbs"],
                           margin=(0, 10), sizing_mode="stretch_width")
        up = pn.widgets.Button(label="⬆ Up (u)", width=90, description="Drill up")
        down = pn.widgets.Button(label="⬇ Top slice (d)", width=130,
                                 description="Drill down into the most explanatory slice")
        reset = pn.widgets.Button(label="Everything", width=100,
                                  description="Show the whole metric")
        up.on_click(lambda e: st.drill_up())
        down.on_click(lambda e: st.drill_down())
        reset.on_click(lambda e: st.drill_to({}))
        # One clickable-list component rather than a table widget or a button per row:
        # Tabulator loads its CSS from a CDN in JupyterLab, Bokeh's DataTable broke the
        # page's first layout, and twenty small panes cost twenty re-layouts per click.
        self._row_filters: list[dict] = []
        self._table = ClickList(
            on_click=self._on_row, css_classes=["wb-slices"], sizing_mode="stretch_width",
            header="slice (click to drill down) · share of the divergence · change in the "
                   "slice · baseline → observed · traffic share · found by")
        self._query = _md("", css_classes=["wb-slice-query"], sizing_mode="stretch_width")
        self._fill_table()
        st.param.watch(self._on_ranked, ["ranked"])
        st.param.watch(lambda *e: setattr(self._crumbs, "object", self._crumb_text()),
                       ["slice_filter", "drill_stack"])

        # plain Bokeh bars refilled in place (ui/timeline.py), as the timeline
        self._barfig = SliceBars(self._on_bar_label)
        self._barfig.show(self._bar_columns())
        self._bars = pn.pane.Bokeh(self._barfig.figure, sizing_mode="stretch_width",
                                   min_height=320)
        # The heatmap, the comparison and the rate-mix split redraw only while their tab
        # is shown (or when it is opened): a click on a slice then redraws two plots,
        # not six. Their plots and selectors are constructed when the tab is first
        # opened (most sessions never do).
        self._gate = _Gate()
        self._dirty: set[str] = set()
        self._compare_stats = _md("", css_classes=["wb-compare-stats"])
        st.param.watch(self._on_compare, "compare_frames")
        self._mix_text = _md("", css_classes=["wb-ratemix"])
        st.param.watch(lambda *e: self._poke("heat"), ["data", "slice_filter", "heat_x",
                                                       "heat_y"])
        st.param.watch(lambda *e: self._poke("mix"), ["data", "slice_filter", "mix_dimension"])
        tabs = _lazy_tabs(
            ("Ranked", pn.Column(self._table, self._query, self._bars,
                                 sizing_mode="stretch_width")),
            ("Heatmap", self._heat_tab), ("Compare", self._compare_tab),
            ("Rate vs mix", self._mix_tab), sizing_mode="stretch_width")
        self._tabs = tabs
        tabs.param.watch(self._on_tab, "active")
        return pn.Column(pn.Row(self._crumbs, up, down, reset,
                                sizing_mode="stretch_width"), tabs,
                         sizing_mode="stretch_width", css_classes=["wb-slice-explorer"])

    _SELECT_W = dict(width=170)

    def _heat_tab(self) -> pn.Column:
        st = self.state
        heat = hv.DynamicMap(pn.bind(self._heat, self._gate.param.heat))
        self._heat_tap = hv.streams.Tap(source=heat)
        self._heat_tap.add_subscriber(self._on_heat_tap)
        return pn.Column(pn.Row(pn.widgets.Select.from_param(st.param.heat_x, **self._SELECT_W),
                                pn.widgets.Select.from_param(st.param.heat_y, **self._SELECT_W)),
                         _hv(heat), sizing_mode="stretch_width")

    def _compare_tab(self) -> pn.Column:
        st, w = self.state, self._SELECT_W
        compare_a = hv.DynamicMap(pn.bind(self._compare, st.param.compare_frames, "a"))
        compare_b = hv.DynamicMap(pn.bind(self._compare, st.param.compare_frames, "b"))
        return pn.Column(
            pn.Row(pn.widgets.Select.from_param(
                st.param.compare_dimension, description="Dimension whose two values are "
                "compared, inside the shown slice (or the top slice)", **w),
                pn.widgets.Select.from_param(st.param.compare_a, **w),
                pn.widgets.Select.from_param(st.param.compare_b, **w)),
            self._compare_stats,
            pn.Row(_hv(compare_a), _hv(compare_b), sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def _mix_tab(self) -> pn.Column:
        st = self.state
        ratemix = hv.DynamicMap(pn.bind(self._ratemix, self._gate.param.mix))
        self._mix_text.object = self._mix_summary()
        return pn.Column(pn.widgets.Select.from_param(
            st.param.mix_dimension, description="Split the shown slice's change by this "
            "dimension: rate = each value's own change, mix = its traffic share moving",
            **self._SELECT_W), self._mix_text, _hv(ratemix), sizing_mode="stretch_width")

    # ----------------------------------------------------------------- ranked
    def _crumb_text(self) -> str:
        st = self.state
        path = [slice_label(f) for f in st.drill_stack] + [slice_label(st.slice_filter)]
        path = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
        return "**Drill path:** " + " › ".join(html.escape(p) for p in path)

    def _fill_table(self) -> None:
        r = self.state.ranked
        recs = list(r.itertuples(index=False))[: self.max_rows] if r is not None else []
        ratio = self.state.data is not None and self.state.data.kind == "ratio"
        fmt = ".4f" if ratio else ",.0f"
        self._row_filters = [dict(x.filter) for x in recs]
        self._query.object = slice_queries(self.state, self._row_filters)
        self._table.rows = [
            {"label": x.slice, "title": f"Show {x.slice} in the timeline",
             "html": (f"<b>{_pct(x.share, '.0%')}</b> · {_pct(x.relative_change)} · "
                      f"{_pct(x.baseline, fmt)} → {_pct(x.observed, fmt)} · "
                      f"{_pct(x.traffic_share, '.0%')} · <span class='m'>{x.source}</span>"
                      + _share_note_html(x.share))}
            for x in recs]

    def _bar_columns(self) -> dict:
        ranked, data = self.state.ranked, self.state.data
        if ranked is None or data is None:
            return bar_columns(ranked)
        # the same ranked frame gives the same bars in every session (data.shared_plot)
        return data.shared_plot(("bars", id(ranked)), ranked, lambda: bar_columns(ranked))

    def _on_row(self, i: int) -> None:
        if i < len(self._row_filters):
            self.state.drill_to(self._row_filters[i])

    def _on_ranked(self, event):
        self._fill_table()
        on_page(self._bars, self._barfig.figure, self._barfig.show, self._bar_columns())

    def _filter_of(self, label: str) -> dict | None:
        r = self.state.ranked
        if r is None:
            return None
        hit = r[r["slice"] == label]
        return dict(hit.iloc[0]["filter"]) if len(hit) else None

    def _on_bar_label(self, label: str) -> None:
        filt = self._filter_of(label)
        if filt is not None:
            self.state.drill_to(filt)

    # ----------------------------------------------------------------- lazy tabs
    _TAB_OF = {"heat": 1, "compare": 2, "mix": 3}

    def _poke(self, what: str) -> None:
        """Redraw ``what`` now if its tab is shown, else when it is opened."""
        if self._tabs.active == self._TAB_OF[what]:
            self._redraw(what)
        else:
            self._dirty.add(what)

    def _redraw(self, what: str) -> None:
        self._dirty.discard(what)
        if what == "compare":
            self.state.compare_wanted = True
            return
        if what == "mix":
            self._mix_text.object = self._mix_summary()
        setattr(self._gate, what, getattr(self._gate, what) + 1)

    def _on_tab(self, event):
        self.state.compare_wanted = event.new == self._TAB_OF["compare"]
        for what in list(self._dirty):
            if self._TAB_OF[what] == event.new:
                self._redraw(what)

    # ----------------------------------------------------------------- heatmap
    def _heat(self, _tick):
        # The element's key dimensions are always named x and y (see slice_heatmap), so
        # switching dimensions updates the plot in place.
        st = self.state
        data, filt, x, y = st.data, st.slice_filter, st.heat_x, st.heat_y
        if data is None or x is None or y is None or x == y:
            return plots.slice_heatmap(pd.DataFrame(), "columns", "rows")
        return plots.slice_heatmap(data.heatmap(filt, x, y), x, y)

    def _on_heat_tap(self, x=None, y=None, **kw):
        st = self.state
        if isinstance(x, str) and isinstance(y, str) and x != "-" and st.heat_x and st.heat_y:
            st.drill_to({**st.slice_filter, st.heat_x: x, st.heat_y: y})

    # ----------------------------------------------------------------- compare
    def _compare(self, frames, key):
        st = self.state
        data = st.data
        metric = data.metric if data is not None else "metric"
        filt, fr = frames.get(key, ({}, None)) if frames else ({}, None)
        xlim = None
        if data is not None and st.live is not None:
            end = st.live.data_range()[1].tz_localize(None) + st.live.grain
            xlim = (end - pd.Timedelta(days=7), end)
        onset = data.onset.tz_localize(None) if data is not None and data.onset is not None \
            else None
        return plots.timeline_plot(fr, metric=metric, filt=filt, onset=onset, xlim=xlim,
                                   height=300).opts(
            title=f"{key.upper()}: {slice_label(filt)}", show_legend=False)

    def _on_compare(self, event):
        st, frames = self.state, event.new or {}
        if st.data is None or not frames:
            return
        rows = ["| | configuration | baseline | observed | change |", "|---|---|---|---|---|"]
        for k in ("a", "b"):
            filt, _ = frames[k]
            imp = st.data.impact(filt)
            rows.append(f"| **{k.upper()}** | {html.escape(slice_label(filt))} | "
                        f"{_pct(imp['baseline'], '.4f')} | {_pct(imp['observed'], '.4f')} | "
                        f"{_pct(imp['relative_change'])} |")
        self._compare_stats.object = "\n".join(rows)

    # ----------------------------------------------------------------- rate vs mix
    def _ratemix(self, _tick):
        st = self.state
        data, filt, dim = st.data, st.slice_filter, st.mix_dimension
        if data is None or dim is None:
            return plots.rate_mix_bars(pd.DataFrame(), dim or "dimension", metric="metric")
        return plots.rate_mix_bars(data.rate_mix(filt, dim), dim, metric=data.metric,
                                   ratio=data.kind == "ratio")

    def _mix_summary(self) -> str:
        st = self.state
        d = st.data
        if d is None or st.mix_dimension is None:
            return ""
        df = d.rate_mix(st.slice_filter, st.mix_dimension)
        if not len(df):
            return ""
        rate, mix = df["rate"].sum(), df["mix"].sum()
        tot = abs(rate) + abs(mix)
        lines = [f"Inside **{html.escape(slice_label(st.slice_filter))}**, split by "
                 f"**{st.mix_dimension}**: rate changes {rate:+.5f}, mix shift {mix:+.5f} "
                 f"({abs(mix) / tot:.0%} of the movement is mix)." if tot else ""]
        rm = d.inv.rate_mix
        if rm:
            lines.append(f"Whole metric (investigation): rate {rm.get('rate_effect', 0):+.4g}, "
                         f"mix {rm.get('mix_effect', 0):+.4g}, mix share "
                         f"{rm.get('mix_share', 0):.0%}.")
        return "\n\n".join(x for x in lines if x)


# ============================================================================ narrative
class NarrativeView(_View):
    """The story for an engineer, an operator or a product manager."""

    def _build(self):
        st = self.state
        roles = pn.widgets.RadioButtonGroup.from_param(
            st.param.role, button_type="default", button_style="outline",
            description="Same facts, told for this reader")
        self._md = _md(self._story(), css_classes=["wb-story"],
                                    sizing_mode="stretch_width")
        st.param.watch(lambda *e: setattr(self._md, "object", self._story()),
                       ["role", "data", "decisions"])
        return pn.Column(roles, self._md, sizing_mode="stretch_width")

    def _story(self) -> str:
        st = self.state
        d = st.data
        if d is None:
            return "<span class='wb-muted'>waiting for the investigation…</span>"
        top = d.causes[0] if d.causes else None
        scope = dict(top.get("scope") or {}) if top else d.top_slice
        try:
            imp = d.impact(scope)
        except Exception:
            imp = None
        return narrate(d.inv, st.role, impact=imp, decisions=st.decisions,
                       change_info=d.change(top["change_id"]) if top else None,
                       numerator=d.spec.numerator)


# ============================================================================ search
class SearchView(_View):
    """Search over the changes, the slices and past investigations (``/`` focuses it)."""

    max_results = param.Integer(default=12, doc="Results listed.")

    def _build(self):
        st = self.state
        self._box = pn.widgets.TextInput(
            placeholder="Search changes, slices, past investigations  ( / )",
            sizing_mode="stretch_width", css_classes=["wb-search"],
            description="Every word must appear (id, kind, target, scope, author, text)")
        self._box.param.watch(self._on_query, "value_input")
        self._hits: list[tuple[str, str]] = []
        self._holder = ClickList(on_click=self._on_hit, css_classes=["wb-search-results"],
                                 sizing_mode="stretch_width")
        return pn.Column(self._box, self._holder, sizing_mode="stretch_width")

    def _on_query(self, event):
        q = event.new or ""
        self.state.query = q
        df = self.state.search(q) if q.strip() else None
        recs = list(df.itertuples(index=False))[: self.max_results] if df is not None else []
        self._hits = [(x.type, x.key) for x in recs]
        tips = {"slice": "Drill into this slice",
                "change": "Select this change if it is a candidate cause (else say why not)"}
        self._holder.header = ("nothing matches every word" if q.strip() and not recs else "")
        self._holder.rows = [
            {"label": x.key, "title": tips.get(x.type, "Past investigation"),
             "html": (f"<span class='b'>{x.type}</span> <b>{html.escape(x.title)}</b> · "
                      f"<span class='m'>{html.escape(x.detail)}</span>")} for x in recs]

    def _on_hit(self, i: int) -> None:
        if i < len(self._hits):
            self.state.open_result(*self._hits[i])


# ============================================================================ workbench
class Workbench(_View):
    """Every view composed: the served app and the notebook display of an investigation.

    Parameters
    ----------
    keyboard:
        ``page`` (served: shortcuts anywhere on the page), ``focus`` (notebook:
        only while the pointer is over the workbench) or ``off``.
    """

    keyboard = param.Selector(default="page", objects=["page", "focus", "off"],
                              doc="Where keyboard shortcuts listen.")
    title = param.String(default="Divergence Workbench", doc="Header title.")
    defer = param.Boolean(default=False, doc=(
        "Render the replay and the slice explorer after the page's first paint "
        "(served sessions: the summary, timeline and hypotheses come first)."))

    def _build(self):
        st = self.state
        self.divergence = DivergenceView(state=st)
        self.hypotheses = HypothesisBoard(state=st)
        self.search = SearchView(state=st)
        # The views below the first paint and in hidden tabs are constructed when first
        # shown (or first asked for: ``self.slices``...), each once.
        self._parts: dict[str, _View] = {}
        kw = {"keys": []} if self.keyboard == "off" else {}
        self.keys = KeyboardShortcuts(on_key=self._on_key,
                                      scope="focus" if self.keyboard == "off" else self.keyboard,
                                      **kw)
        metric = pn.widgets.Select.from_param(st.param.metric, width=200,
                                              description="Investigate another metric")
        st.param.watch(self._on_metric, "metric")
        self._verdict = _md(self._verdict_text(), css_classes=["wb-verdict"],
                                         margin=(0, 10))
        st.param.watch(lambda *e: setattr(self._verdict, "object", self._verdict_text()),
                       ["data", "live", "busy"])
        status = _md(st.param.message, css_classes=["wb-status"], margin=(0, 10),
                     styles={"color": "#6b7280", "font-size": "12px"})
        # The progress bar and the alert are built when first needed in a served session
        # (``defer``: most sessions never show either); at once otherwise (a notebook cell
        # must not get models from an update caused in another cell).
        self._notices = pn.Row(status, sizing_mode="stretch_width")
        self._alerts = pn.Row(sizing_mode="stretch_width")
        self._progress = self._alert = self._dismiss = None
        st.param.watch(self._on_busy, "busy")
        st.param.watch(self._on_error, "error")
        if not self.defer or st.busy:
            self._make_progress()
        if not self.defer or st.error:
            self._make_alert()
        header = pn.Row(_md(f"## {self.title}", margin=(0, 10)), metric,
                        self._verdict, pn.layout.HSpacer(), self.keys,
                        sizing_mode="stretch_width", css_classes=["wb-header"])
        below = [lambda: self.replay, lambda: self.slices]
        if self.defer:
            below = [_after_first_paint(*below)]
        else:
            below = [make() for make in below]
        left = pn.Column(self.search, self.divergence, *below, sizing_mode="stretch_width")
        # Hidden tabs render when first opened (_lazy_tabs), never Panel's dynamic tabs.
        from .plugins import view_tabs  # third-party views the identity may see (plug-ins)
        self.plugin_views = view_tabs(st)
        right = pn.Column(_lazy_tabs(("Hypotheses", self.hypotheses),
                                     ("Story", lambda: self.narrative),
                                     ("Evidence", lambda: self.causal),
                                     ("Act", lambda: self.act),
                                     *self.plugin_views, sizing_mode="stretch_width"),
                          width=450, margin=(0, 15, 0, 5))
        body = pn.Row(left, right, sizing_mode="stretch_width")
        return pn.Column(header, self._notices, self._alerts, body,
                         sizing_mode="stretch_width", css_classes=["wb-root"],
                         stylesheets=[_CSS])

    def _part(self, name: str, make) -> "_View":
        view = self._parts.get(name)
        if view is None:
            view = self._parts[name] = make()
        return view

    @property
    def replay(self) -> TimelineReplay:
        return self._part("replay", lambda: TimelineReplay(state=self.state))

    @property
    def slices(self) -> SliceExplorer:
        return self._part("slices", lambda: SliceExplorer(state=self.state))

    @property
    def narrative(self) -> NarrativeView:
        return self._part("narrative", lambda: NarrativeView(state=self.state))

    @property
    def causal(self) -> CausalView:
        # Fixed-width plots: a responsive plot in a hidden tab sizes itself to nothing.
        return self._part("causal", lambda: CausalView(state=self.state))

    @property
    def act(self):
        """The closed loop: test a hypothesis by acting (:mod:`workbench.ui.loop`)."""
        from .loop import LoopState, LoopView
        return self._part("act", lambda: LoopView(state=LoopState(workbench=self.state)))

    def _verdict_text(self) -> str:
        st = self.state
        d = st.live
        if d is None:
            return "<span class='wb-muted'>investigating…</span>" if st.busy else ""
        top = d.causes[0] if d.causes else None
        return (f"verdict **{d.inv.verdict}**"
                + (f" · top cause **{top['change_id']}** {top['kind']} "
                   f"{html.escape(top['target'])}"
                   f" ({_conf(top['confidence'])})" if top else "")
                + f" · onset {_when(d.inv.divergence.get('onset'))}")

    def _make_progress(self) -> None:
        st = self.state
        self._progress = pn.indicators.Progress(value=st.param.progress, max=100, width=260,
                                                visible=st.param.busy, active=st.param.busy)
        self._notices.insert(0, self._progress)

    def _make_alert(self) -> None:
        self._alert = _Alert("", alert_type="danger", visible=False,
                             sizing_mode="stretch_width", css_classes=["wb-alert"])
        self._dismiss = pn.widgets.Button(label="Dismiss", width=80, visible=False)
        self._dismiss.on_click(lambda e: setattr(self.state, "error", ""))
        self._alerts.objects = [self._alert, self._dismiss]

    def _on_busy(self, event):
        if event.new and self._progress is None:
            self._make_progress()

    def _on_error(self, event):
        msg = event.new or ""
        if self._alert is None:
            if not msg:
                return
            self._make_alert()
        self._alert.object = f"**Something went wrong:** {html.escape(msg)}" if msg else ""
        self._alert.visible = bool(msg)
        self._dismiss.visible = bool(msg)

    def _on_metric(self, event):
        st = self.state
        if st.live is not None and event.new and event.new != st.live.metric:
            st.load()

    def _on_key(self, key: str) -> None:
        st = self.state
        action = {"j": st.next_hypothesis, "k": st.previous_hypothesis, "d": st.drill_down,
                  "u": st.drill_up, " ": st.toggle_play}.get(key)
        if action is not None:
            action()


def _share_note_html(share) -> str:
    """Under a slice row: what a share above 100% or below 0% means (issue 17)."""
    note = share_meaning(share, "this slice")
    return "" if note is None else f"<br><span class='m share-note'>{html.escape(note)}</span>"
