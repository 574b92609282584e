"""The served timeline as one plain Bokeh figure whose data sources change in place.

:func:`timeline_columns` turns a slice's series (``InvestigationData.timeline``),
the change log, the data-quality gaps and the markers into plain columns and
ranges: pure data, computed once per slice for every session showing it
(``InvestigationData.shared_plot``). :class:`TimelineFigure` is one session's
figure: built once, it only ever gets new ``ColumnDataSource.data``, a new title
text and new range ends, so a click on a slice sends a few arrays and never
creates a Bokeh model. Drawn the way :func:`workbench.ui.plots.timeline_plot` draws
it in HoloViews (the band, the expected and observed lines, the onset, the change
markers with their hover text, the gaps, a running test's arms), without a
HoloViews pipeline per session: profiled, the HoloViews overlay was about 0.2 CPU s
of a session's build and most of a click.

The timeline reads as the time series plot with a forecast band of Cleveland,
*Visualizing Data* (1993), ch. 3; the markers follow the change-point annotation
of Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (2021), 2.2.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import slice_label
from .plots import COLORS, _empty_series, _rail

__all__ = ["TimelineFigure", "timeline_columns", "on_page", "SliceBars", "bar_columns", "SERIES"]

#: The columns of the series source (the browser tests read ``observed``).
SERIES = ("ts", "observed", "expected", "lower", "upper")
_CHANGE_COLS = ("ts", "y", "id", "kind", "target", "scope", "author", "rollout",
                "description")
_ARMS = (("kept", "#b45309", "dotdash"), ("reverted", "#15803d", "solid"))


def _ms(ts) -> np.ndarray:
    """Zone-free time stamps as Bokeh's milliseconds since the epoch (float)."""
    values = pd.to_datetime(pd.Series(ts)).to_numpy(dtype="datetime64[ns]")
    return values.astype("int64") / 1e6


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype=float) if col in frame else np.full(len(frame), np.nan)


def timeline_columns(frame: pd.DataFrame | None, *, metric: str, filt: dict | None = None,
                     changes: pd.DataFrame | None = None, gaps: pd.DataFrame | None = None,
                     onset=None, now=None, xlim=None, highlight: str | None = None,
                     top_causes: int = 5, arms: pd.DataFrame | None = None) -> dict:
    """What :class:`TimelineFigure` shows, as plain columns (shared by every session).

    Same arguments as :func:`workbench.ui.plots.timeline_plot`. Returns ``title``,
    ``x_range`` and ``y_range`` (start, end) and one column dict per source:
    ``series``, ``gaps``, ``onset``, ``now``, ``highlight``, ``changes``,
    ``causes`` and ``arm:kept`` / ``arm:reverted``.
    """
    frame = frame if frame is not None else _empty_series()
    if xlim is not None and len(frame):
        frame = frame[(frame["ts"] >= xlim[0]) & (frame["ts"] <= xlim[1])]
    out: dict = {"title": f"{metric} · {slice_label(filt)}"}
    if now is not None:
        out["title"] += f" · as of {pd.Timestamp(now):%Y-%m-%d %H:%M} UTC"
    out["series"] = {"ts": _ms(frame["ts"]),
                     **{c: _floats(frame, c) for c in SERIES[1:]}}
    lo, hi, rail = _rail(frame)
    g = gaps if gaps is not None and len(gaps) else pd.DataFrame(columns=["start", "end"])
    out["gaps"] = {"start": _ms(g["start"]), "end": _ms(g["end"])}
    for key, at in (("onset", onset), ("now", now)):
        out[key] = {"x": _ms([at] if at is not None else [])}
    ch = changes if changes is not None else pd.DataFrame(columns=list(_CHANGE_COLS))
    if xlim is not None and len(ch):
        ch = ch[(ch["ts"] >= xlim[0]) & (ch["ts"] <= xlim[1])]
    is_cause = (ch["rank"] <= top_causes).to_numpy() if len(ch) and "rank" in ch else \
        np.zeros(len(ch), dtype=bool)
    for key, rows in (("changes", ch[~is_cause]), ("causes", ch[is_cause])):
        cols = {c: rows[c].astype(str).tolist() if c in rows else [""] * len(rows)
                for c in _CHANGE_COLS[2:]}
        out[key] = {"ts": _ms(rows["ts"]) if len(rows) else np.array([], dtype=float),
                    "y": np.full(len(rows), rail, dtype=float), **cols}
    hl = ch.loc[ch["id"] == highlight, "ts"] if highlight is not None and len(ch) else []
    out["highlight"] = {"x": _ms(list(hl))}
    tops = [hi]
    for arm, _color, _dash in _ARMS:
        a = arms[arms["arm"] == arm] if arms is not None and len(arms) else None
        out[f"arm:{arm}"] = ({"ts": _ms(a["ts"]), "value": a["value"].to_numpy(dtype=float)}
                             if a is not None and len(a) else
                             {"ts": np.array([], dtype=float), "value": np.array([], dtype=float)})
        if a is not None and len(a):
            v = a["value"].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size:
                lo, tops = min(lo, float(v.min())), tops + [float(v.max())]
    hi = max(tops)
    # headroom above the data for the legend, which sits inside the frame (a legend
    # outside it is taken off the figure and put back on every update)
    out["y_range"] = (lo, hi + 0.25 * (hi - lo))
    xs = out["series"]["ts"]
    if xlim is not None:
        out["x_range"] = tuple(float(x) for x in _ms(list(xlim)))
    elif len(xs):
        out["x_range"] = (float(xs.min()), float(xs.max()))
    else:
        out["x_range"] = (0.0, 1.0)
    if arms is not None and len(arms):
        out["x_range"] = (out["x_range"][0],
                          max(out["x_range"][1], float(out["arm:kept"]["ts"].max(initial=0)),
                              float(out["arm:reverted"]["ts"].max(initial=0))))
    return out


class TimelineFigure:
    """One session's timeline figure; :meth:`show` puts new columns in its sources.

    Parameters
    ----------
    metric:
        Axis label and the first title.
    height:
        Figure height in pixels (its width follows the page).
    """

    def __init__(self, metric: str, height: int = 420):
        from bokeh.models import (ColumnDataSource, DatetimeAxis, Grid, HoverTool, Legend,
                                  LegendItem, Range1d)
        from bokeh.plotting import figure

        empty = timeline_columns(None, metric=metric)
        self.sources = {k: ColumnDataSource(v) for k, v in empty.items() if isinstance(v, dict)}
        s = self.sources
        self.x_range, self.y_range = Range1d(0, 1), Range1d(0, 1)
        # the tools a user uses (pan, box zoom, reset, the hovers) and a date axis whose
        # ticker knows hours to years (Bokeh's default adds sub-hour tickers): fewer models
        fig = figure(x_axis_type=None, height=height, sizing_mode="stretch_width",
                     title=empty["title"], x_range=self.x_range, y_range=self.y_range,
                     tools="pan,box_zoom,reset", active_drag="pan", toolbar_location="right",
                     y_axis_label=metric)
        fig.add_layout(DatetimeAxis(ticker=_hour_ticker(), formatter=_date_formatter(),
                                    axis_label="time (UTC)"), "below")
        fig.add_layout(Grid(dimension=0, ticker=fig.xaxis[0].ticker))
        items = []
        #: legend entries shown only while their source has data (no gap: no "gap")
        self._optional: list[tuple[LegendItem, str]] = []

        def add(label, renderer, optional: str | None = None):
            items.append(LegendItem(label=label, renderers=[renderer]))
            if optional is not None:
                self._optional.append((items[-1], optional))
            return renderer
        add("data-quality gap", fig.vstrip(x0="start", x1="end", source=s["gaps"],
                                           color=COLORS["gap"], alpha=0.25), "gaps")
        add("baseline band", fig.varea(x="ts", y1="lower", y2="upper", source=s["series"],
                                       color=COLORS["band"], fill_alpha=0.45))
        add("expected", fig.line("ts", "expected", source=s["series"], color=COLORS["expected"],
                                 line_dash="dashed", line_width=1.5))
        observed = add("observed", fig.line("ts", "observed", source=s["series"],
                                            color=COLORS["observed"], line_width=2))
        add("onset", fig.vspan(x="x", source=s["onset"], line_color=COLORS["onset"],
                               line_dash="dotted", line_width=2))
        add("replay time", fig.vspan(x="x", source=s["now"], line_color=COLORS["now"],
                                     line_width=3, line_alpha=0.6), "now")
        add("selected hypothesis", fig.vspan(x="x", source=s["highlight"],
                                             line_color=COLORS["selected"], line_width=1,
                                             line_alpha=0.5), "highlight")
        others = add("change", fig.scatter("ts", "y", source=s["changes"], marker="triangle",
                                           size=7, color=COLORS["change"], alpha=0.7))
        causes = add("candidate cause", fig.scatter("ts", "y", source=s["causes"],
                                                    marker="triangle", size=13,
                                                    color=COLORS["cause"], line_color="white"))
        for arm, color, dash in _ARMS:
            add(f"test arm: {arm}", fig.line("ts", "value", source=s[f"arm:{arm}"], color=color,
                                            line_width=2.5, line_dash=dash), f"arm:{arm}")
        fig.add_tools(HoverTool(renderers=[observed], mode="vline", tooltips=[
            ("time", "@ts{%F %H:%M} UTC"), ("observed", "@observed{0.0000}"),
            ("expected", "@expected{0.0000}"), ("band", "@lower{0.0000} .. @upper{0.0000}")],
            formatters={"@ts": "datetime"}, description="Metric values"))
        fig.add_tools(HoverTool(renderers=[others, causes], tooltips=[
            ("change", "@id"), ("kind", "@kind"), ("target", "@target"), ("scope", "@scope"),
            ("author", "@author"), ("rollout", "@rollout"), ("when", "@ts{%F %H:%M} UTC"),
            ("what", "@description")], formatters={"@ts": "datetime"},
            description="Change details"))
        fig.add_layout(Legend(items=items, location="top_left", orientation="horizontal",
                              background_fill_alpha=0.8, padding=4, margin=4,
                              label_text_font_size="11px", spacing=6))
        fig.xgrid.grid_line_alpha = fig.ygrid.grid_line_alpha = 0.6
        self.figure = fig

    def show(self, cols: dict) -> None:
        """Show ``cols`` (:func:`timeline_columns`): data, title and ranges, in place."""
        for key, source in self.sources.items():
            new = cols[key]
            if not (_same(source.data, new)):
                source.data = new
        for item, key in self._optional:
            shown = len(next(iter(cols[key].values()))) > 0
            if item.visible != shown:
                item.visible = shown
        if self.figure.title.text != cols["title"]:
            self.figure.title.text = cols["title"]
        for rng, (start, end) in ((self.x_range, cols["x_range"]),
                                  (self.y_range, cols["y_range"])):
            if np.isfinite(start) and np.isfinite(end) and end > start:
                rng.update(start=start, end=end)


def _hour_ticker():
    """Date ticks from an hour to years (Bokeh's default adds sub-hour tickers: models)."""
    from bokeh.models import AdaptiveTicker, DatetimeTicker, DaysTicker, MonthsTicker, YearsTicker

    hour = 3_600_000
    return DatetimeTicker(tickers=[
        AdaptiveTicker(mantissas=[1, 2, 4, 6, 8, 12], base=24, min_interval=hour,
                       max_interval=12 * hour, num_minor_ticks=0),
        DaysTicker(days=list(range(1, 32))), DaysTicker(days=list(range(1, 31, 3))),
        DaysTicker(days=[1, 8, 15, 22]), DaysTicker(days=[1, 15]),
        MonthsTicker(months=list(range(12))), YearsTicker()])


def _date_formatter():
    """Hours or days on the ticks, the date (or year) under them once (two models)."""
    from bokeh.models import DatetimeTickFormatter

    return DatetimeTickFormatter(
        hours="%H:%M", hourmin="%H:%M", days="%b %d", months="%b %Y", years="%Y",
        boundary_scaling=False, context_which="all",
        context=DatetimeTickFormatter(hours="%b %d, %Y", hourmin="%b %d, %Y", days="%Y",
                                      months="", years="", boundary_scaling=False,
                                      hide_repeats=True))


def _same(old, new: dict) -> bool:
    """Whether a source already holds ``new`` (the same shared arrays, or both empty)."""
    if old.keys() != new.keys():
        return False
    return all(old[k] is new[k] or (len(old[k]) == 0 and len(new[k]) == 0) for k in new)


def on_page(pane, model, fn, *args) -> None:
    """Run ``fn(*args)``, which changes Bokeh ``model`` (shown by Panel ``pane``) in place,
    so that the change reaches the page.

    Served, a Bokeh document may only change while its session holds the lock: on
    the loop thread while Panel dispatches an event (the usual case: a click) it runs
    at once; from a background task it is scheduled as the document's next tick, as
    HoloViews schedules its own updates. In a notebook the change is pushed over the
    output's comm (``pn.io.push_notebook``); without a document it just runs.
    """
    from panel.io import unlocked
    from panel.io.notebook import push_notebook
    from panel.io.state import state

    doc = model.document
    if doc is not None and doc.session_context is not None and not state._unblocked(doc):
        doc.add_next_tick_callback(lambda: fn(*args))
        return
    with unlocked():
        fn(*args)
    if doc is not None and doc.session_context is None:
        push_notebook(pane)


# ============================================================================ slice bars
def bar_columns(ranked: pd.DataFrame | None) -> dict:
    """The ranked slices as the columns of :class:`SliceBars` (first-ranked on top)."""
    cols = ["slice", "share", "relative_change", "source"]
    df = ranked[cols] if ranked is not None and len(ranked) else pd.DataFrame(
        {"slice": ["(no slices)"], "share": [0.0], "relative_change": [0.0],
         "source": ["breakdown"]})
    df = df.drop_duplicates("slice").iloc[::-1]  # bars draw bottom-up
    share = df["share"].to_numpy(dtype=float)
    share = np.where(np.isfinite(share), share, 0.0)
    source = df["source"].astype(str).tolist()
    lo, hi = min(0.0, float(share.min())), max(0.0, float(share.max()))
    pad = 0.05 * (hi - lo) or 0.05
    return {"data": {"slice": df["slice"].astype(str).tolist(), "share": share,
                     "relative_change": df["relative_change"].to_numpy(dtype=float),
                     "source": source,
                     "color": [COLORS.get(s, COLORS["breakdown"]) for s in source]},
            "x_range": (lo - (pad if lo < 0 else 0.0), hi + pad)}


class SliceBars:
    """One session's bars of the ranked slices' share of the divergence; a click on a
    bar calls ``on_tap(label)``. Updated in place (:meth:`show`), like the timeline.

    Parameters
    ----------
    on_tap:
        Called with the clicked slice's label.
    height:
        Figure height in pixels.
    """

    def __init__(self, on_tap, height: int = 320):
        from bokeh.models import (ColumnDataSource, FactorRange, HoverTool,
                                  NumeralTickFormatter, Range1d)
        from bokeh.plotting import figure

        first = bar_columns(None)
        self.source = ColumnDataSource(first["data"])
        self.y_range, self.x_range = FactorRange(factors=first["data"]["slice"]), Range1d(0, 1)
        fig = figure(y_range=self.y_range, x_range=self.x_range, height=height,
                     sizing_mode="stretch_width", tools="tap", toolbar_location=None,
                     title="Slices by share of the divergence (click to drill down)",
                     x_axis_label="share of the divergence", y_axis_label="slice")
        bars = fig.hbar(y="slice", right="share", height=0.8, source=self.source,
                        color="color", nonselection_fill_alpha=0.5)
        fig.add_tools(HoverTool(renderers=[bars], tooltips=[
            ("slice", "@slice"), ("share of divergence", "@share{0%}"),
            ("change in the slice", "@relative_change{+0.0%}"), ("found by", "@source")],
            description="Slice details"))
        fig.xaxis.formatter = NumeralTickFormatter(format="0%")
        fig.ygrid.grid_line_color = None
        self.figure = fig
        self._on_tap = on_tap
        self.source.selected.on_change("indices", self._tapped)

    def show(self, cols: dict) -> None:
        """Show ``cols`` (:func:`bar_columns`) in place."""
        if self.source.data.get("slice") != cols["data"]["slice"] or \
                not np.array_equal(self.source.data.get("share"), cols["data"]["share"]):
            self.y_range.factors = cols["data"]["slice"]
            self.source.data = cols["data"]
            self.x_range.update(start=cols["x_range"][0], end=cols["x_range"][1])
        if self.source.selected.indices:
            self.source.selected.indices = []

    def _tapped(self, attr, old, new) -> None:
        if new:
            labels = self.source.data["slice"]
            if 0 <= new[0] < len(labels):
                self._on_tap(labels[new[0]])
