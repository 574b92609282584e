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
from .plots import COLORS, _change_hover, _empty_series, _rail, _series_hover

__all__ = ["TimelineFigure", "timeline_columns", "on_page", "SliceBars", "bar_columns", "SERIES"]

#: The columns of the series source (the browser tests read ``observed``).
SERIES = ("ts", "observed", "expected", "lower", "upper")
_CHANGE_COLS = ("ts", "y", "id", "kind", "target", "scope", "author", "rollout",
                "description")
_ARMS = (("kept", "#b45309", "dotdash"), ("reverted", "#15803d", "solid"))
#: The vertical lines, one source (legend label, color, width, alpha, dash per row;
#: the rows of this table, in this order, are the source's first rows: see ``_legend_rows``).
_MARKS = {"onset": ("onset", COLORS["onset"], 2.0, 1.0, "dotted"),
          "now": ("replay time", COLORS["now"], 3.0, 0.6, "solid"),
          "highlight": ("selected hypothesis", COLORS["selected"], 1.0, 0.5, "solid")}
#: The change markers, one source: ``(label, size, fill, outline, alpha)`` by kind of row
#: (the same legend rows first).
_MARKERS = {"change": ("change", 7.0, COLORS["change"], COLORS["change"], 0.7),
            "cause": ("candidate cause", 13.0, COLORS["cause"], "white", 1.0)}


def _ms(ts) -> np.ndarray:
    """Zone-free time stamps as Bokeh's milliseconds since the epoch (float)."""
    values = pd.to_datetime(pd.Series(ts)).to_numpy(dtype="datetime64[ns]")
    return values.astype("int64") / 1e6


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype=float) if col in frame else np.full(len(frame), np.nan)


def _styled(keys, styles: dict, names: tuple[str, ...]) -> dict:
    """Per-row style columns ``names`` for the row keys ``keys`` (a ``styles`` tuple each,
    its legend label first)."""
    picked = pd.DataFrame.from_dict(styles, orient="index", columns=["label", *names]).reindex(
        np.asarray(keys, dtype=object))
    return {n: picked[n].to_numpy(float) if pd.api.types.is_numeric_dtype(picked[n])
            else picked[n].astype(str).tolist() for n in names}


def _legend_rows(keys, styles: dict) -> np.ndarray:
    """Row keys with one undrawn row per kind of row first (``styles``' order).

    The legend draws each entry from a fixed row of the renderer's source
    (``LegendItem.index``): these first rows, at NaN coordinates, never drawn or hit,
    the same in every column set. A legend entry read from the drawn rows (a
    ``legend_field`` label: the first row holding it) could point past the rows
    the browser's glyph still holds: BokehJS applies a patch's changes one by one,
    and a layout change in the same patch paints the figure at once, before the
    glyph has taken the new columns (its visuals are set asynchronously), so after a
    replay, back to now, the legend read a row of the new columns past the end of
    the old style arrays ("RangeError: Offset is outside the bounds of the
    DataView") and the rest of the patch was lost.
    """
    return np.concatenate([np.asarray(list(styles), dtype=object),
                           np.asarray(keys, dtype=object)])


def _nan_first(n: int, values) -> np.ndarray:
    """``n`` NaN (the legend rows' coordinates) then ``values`` as floats."""
    return np.concatenate([np.full(n, np.nan), np.asarray(values, dtype=float)])


def timeline_columns(frame: pd.DataFrame | None, *, metric: str, filt: dict | None = None,
                     changes: pd.DataFrame | None = None, gaps: pd.DataFrame | None = None,
                     onset=None, now=None, xlim=None, highlight: str | None = None,
                     top_causes: int = 5, arms: pd.DataFrame | None = None) -> dict:
    """What :class:`TimelineFigure` shows, as plain columns (shared by every session).

    Same arguments as :func:`workbench.ui.plots.timeline_plot`. Returns ``title``,
    ``x_range`` and ``y_range`` (start, end) and one column dict per source:
    ``series``, ``gaps``, ``marks`` (the onset, replay time and selected hypothesis
    lines, each row with its style, after one undrawn legend row per kind of line),
    ``changes`` (the two legend rows, then every change marker in the window, the
    candidate causes last, ``cause`` true for them) and ``arms`` (``ts``, ``kept``,
    ``reverted``: a running test's arms, NaN where an arm has no value); and
    ``shown``, the legend labels of what is drawn.
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
    ch = changes if changes is not None else pd.DataFrame(columns=list(_CHANGE_COLS))
    if xlim is not None and len(ch):
        ch = ch[(ch["ts"] >= xlim[0]) & (ch["ts"] <= xlim[1])]
    is_cause = (ch["rank"] <= top_causes).to_numpy() if len(ch) and "rank" in ch else \
        np.zeros(len(ch), dtype=bool)
    # the candidate causes last: drawn over the other changes, second in the legend
    ch = ch.iloc[np.argsort(is_cause, kind="stable")]
    is_cause = np.sort(is_cause, kind="stable")
    hl = ch.loc[ch["id"] == highlight, "ts"] if highlight is not None and len(ch) else []
    marks = pd.DataFrame(
        [(key, at) for key, ats in (("onset", [] if onset is None else [onset]),
                                    ("now", [] if now is None else [now]),
                                    ("highlight", list(hl))) for at in ats],
        columns=["key", "x"])
    k = len(_MARKERS)
    out["marks"] = {"x": _nan_first(len(_MARKS), _ms(marks["x"])),
                    **_styled(_legend_rows(marks["key"], _MARKS), _MARKS,
                              ("color", "width", "alpha", "dash"))}
    out["changes"] = {"ts": _nan_first(k, _ms(ch["ts"]) if len(ch) else []),
                      "y": _nan_first(k, np.full(len(ch), rail)),
                      "cause": np.concatenate([np.zeros(k, dtype=bool), is_cause]),
                      **{c: [""] * k + (ch[c].astype(str).tolist() if c in ch else
                                        [""] * len(ch)) for c in _CHANGE_COLS[2:]},
                      **_styled(_legend_rows(np.where(is_cause, "cause", "change"),
                                             _MARKERS), _MARKERS,
                                ("size", "color", "line_color", "alpha"))}
    a = arms if arms is not None and len(arms) else None
    wide = (a.pivot_table(index="ts", columns="arm", values="value", aggfunc="last")
            if a is not None else pd.DataFrame(index=pd.DatetimeIndex([], name="ts")))
    out["arms"] = {"ts": _ms(wide.index),
                   **{arm: (wide[arm].to_numpy(dtype=float) if arm in wide
                            else np.full(len(wide), np.nan)) for arm, _c, _d in _ARMS}}
    v = wide.to_numpy(dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size:
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
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
    if len(out["arms"]["ts"]):
        out["x_range"] = (out["x_range"][0], max(out["x_range"][1],
                                                 float(out["arms"]["ts"].max())))
    out["shown"] = frozenset(
        (["data-quality gap"] if len(g) else [])
        + [_MARKS[key][0] for key in marks["key"]]
        + [_MARKERS[key][0] for key in np.where(is_cause, "cause", "change")]
        + [f"test arm: {arm}" for arm, _c, _d in _ARMS if np.isfinite(out["arms"][arm]).any()])
    return out


class TimelineFigure:
    """One session's timeline figure; :meth:`show` puts new columns in its sources.

    Few Bokeh models (a session's first paint is mostly this figure; each model
    is built, sent and kept per session): five sources, one renderer per kind of
    mark (the vertical lines and the change markers each one renderer over one
    source whose rows carry their own style), a legend of fixed labels each drawn
    from a fixed undrawn row (:func:`_legend_rows`) and shown only while its kind
    is drawn, renderers without the selection and muted glyphs nothing here uses,
    the tools a user uses (pan, box zoom, reset, the two hovers) and a date axis
    whose ticker knows hours to years (the data's grain is an hour).

    Parameters
    ----------
    metric:
        Axis label and the first title.
    height:
        Figure height in pixels (its width follows the page).
    cols:
        The first columns shown (:func:`timeline_columns`; default none): the sources
        are made with them, not made empty and then refilled.
    """

    def __init__(self, metric: str, height: int = 420, cols: dict | None = None):
        from bokeh.models import (ColumnDataSource, DatetimeAxis, Grid, Legend, LegendItem,
                                  Range1d)
        from bokeh.models.glyphs import Line, Scatter, VArea, VSpan, VStrip
        from bokeh.plotting import figure

        first = cols if cols is not None else timeline_columns(None, metric=metric)
        self.sources = {k: ColumnDataSource(v) for k, v in first.items() if isinstance(v, dict)}
        s = self.sources
        self.x_range, self.y_range = Range1d(0, 1), Range1d(0, 1)
        fig = figure(x_axis_type=None, height=height, sizing_mode="stretch_width",
                     title=first["title"], x_range=self.x_range, y_range=self.y_range,
                     tools="pan,box_zoom,reset", active_drag="pan", toolbar_location="right",
                     y_axis_label=metric)
        fig.add_layout(DatetimeAxis(ticker=_hour_ticker(), formatter=_date_formatter(),
                                    axis_label="time (UTC)"), "below")
        fig.add_layout(Grid(dimension=0, ticker=fig.xaxis[0].ticker))
        items = []

        def add(source, glyph, *labels):
            """A renderer and its legend entries: a label, or one per legend row."""
            r = fig.add_glyph(s[source], glyph)  # no selection or muted glyph (not used)
            items.extend(LegendItem(label=label, renderers=[r], index=i if len(labels) > 1
                                    else None) for i, label in enumerate(labels))
            return r
        add("gaps", VStrip(x0="start", x1="end", fill_color=COLORS["gap"], fill_alpha=0.25,
                           line_color=None), "data-quality gap")
        add("series", VArea(x="ts", y1="lower", y2="upper", fill_color=COLORS["band"],
                            fill_alpha=0.45), "baseline band")
        add("series", Line(x="ts", y="expected", line_color=COLORS["expected"],
                           line_dash="dashed", line_width=1.5), "expected")
        observed = add("series", Line(x="ts", y="observed", line_color=COLORS["observed"],
                                      line_width=2), "observed")
        add("marks", VSpan(x="x", line_color="color", line_width="width",
                           line_alpha="alpha", line_dash="dash"), *(m[0] for m in _MARKS.values()))
        markers = add("changes", Scatter(x="ts", y="y", marker="triangle", size="size",
                                         fill_color="color", line_color="line_color",
                                         fill_alpha="alpha", line_alpha="alpha"),
                      *(m[0] for m in _MARKERS.values()))
        for arm, color, dash in _ARMS:
            add("arms", Line(x="ts", y=arm, line_color=color, line_width=2.5,
                             line_dash=dash), f"test arm: {arm}")
        #: the entries shown only while their kind is drawn (all but the series')
        self._optional = [i for i in items if i.label.value not in
                          ("baseline band", "expected", "observed")]
        series_hover, change_hover = _series_hover(), _change_hover()
        series_hover.renderers, change_hover.renderers = [observed], [markers]
        fig.add_tools(series_hover, change_hover)
        fig.add_layout(Legend(items=items, location="top_left", orientation="horizontal",
                              background_fill_alpha=0.8, padding=4, margin=4,
                              label_text_font_size="11px", spacing=6))
        fig.xgrid.grid_line_alpha = fig.ygrid.grid_line_alpha = 0.6
        self.figure = fig
        if cols is not None:
            self.show(cols)  # the legend's and the ranges' part (the sources hold them)

    def show(self, cols: dict) -> None:
        """Show ``cols`` (:func:`timeline_columns`): data, title and ranges, in place."""
        for key, source in self.sources.items():
            new = cols[key]
            if not (_same(source.data, new)):
                source.data = new
        for item in self._optional:
            shown = item.label.value in cols["shown"]
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
