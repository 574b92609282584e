"""HoloViews elements of the workbench, built from the frames of :mod:`workbench.ui.data`.

Pure functions from frames to elements: they hold no state and no widgets, so the
same plot renders in JupyterLab, under ``panel serve`` and in a unit test
(``hv.render``). Every element that a view updates in place (through a
``DynamicMap``) keeps the same overlay structure whatever the data (an empty
``VSpans`` when there is no gap, an empty ``Scatter`` when there is no change),
so an update only swaps data sources and never rebuilds the figure.
"""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.models import HoverTool, NumeralTickFormatter

from .data import slice_label

__all__ = ["timeline_plot", "slice_bars", "slice_heatmap", "rate_mix_bars", "effect_plot",
           "counterfactual_plot", "COLORS"]

COLORS = {"observed": "#1f2937", "expected": "#2563eb", "band": "#93c5fd", "onset": "#dc2626",
          "now": "#6b7280", "gap": "#f59e0b", "change": "#6b7280", "cause": "#dc2626",
          "selected": "#dc2626", "other": "#9ca3af", "localized": "#dc2626",
          "breakdown": "#60a5fa", "rate": "#2563eb", "mix": "#f59e0b", "a": "#2563eb",
          "b": "#dc2626"}


def _change_hover() -> HoverTool:
    # A new tool per plot: a Bokeh model belongs to one document (one session).
    return HoverTool(tooltips=[
        ("change", "@id"), ("kind", "@kind"), ("target", "@target"), ("scope", "@scope"),
        ("author", "@author"), ("rollout", "@rollout"), ("when", "@ts{%F %H:%M} UTC"),
        ("what", "@description")], formatters={"@ts": "datetime"},
        description="Change details")


def _series_hover() -> HoverTool:
    return HoverTool(tooltips=[
        ("time", "@ts{%F %H:%M} UTC"), ("observed", "@observed{0.0000}"),
        ("expected", "@expected{0.0000}"), ("band", "@lower{0.0000} .. @upper{0.0000}")],
        formatters={"@ts": "datetime"}, mode="vline", description="Metric values")


def _framewise(overlay):
    """Framewise normalization on every data element of an overlay.

    A DynamicMap update then recomputes the axis ranges from the new data;
    setting it on the overlay alone leaves the first frame's ranges in place.
    """
    for el in overlay:
        if not isinstance(el, (hv.VLines, hv.VSpans)):
            el.opts(framewise=True)
    return overlay


def _rail(frame: pd.DataFrame) -> tuple[float, float, float]:
    """Bottom, top and the y of the change-marker rail below the data."""
    cols = [c for c in ("observed", "lower", "upper", "expected") if c in frame]
    vals = frame[cols].to_numpy(dtype=float) if cols else np.array([0.0, 1.0])
    vals = vals[np.isfinite(vals)]
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - 2 * pad, hi + pad, lo - pad


_ARMS_EMPTY = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns]"),
                            "arm": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)})


def arm_frame(experiment: dict | None) -> pd.DataFrame:
    """A running test's arms (``ts`` zone-free UTC, ``arm``, ``value``) from the workbench
    state's ``experiment`` (empty without one)."""
    rows = (experiment or {}).get("arms") or []
    if not rows:
        return _ARMS_EMPTY
    df = pd.DataFrame(rows)
    df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.tz_localize(None)
    return df.astype({"value": float})


def timeline_plot(frame: pd.DataFrame, *, metric: str, filt: dict | None = None,
                  changes: pd.DataFrame | None = None, gaps: pd.DataFrame | None = None,
                  onset=None, now=None, xlim=None, highlight: str | None = None,
                  top_causes: int = 5, height: int = 360,
                  arms: pd.DataFrame | None = None) -> hv.Overlay:
    """The metric with its baseline band, onset, change markers and data-quality gaps.

    ``frame`` has ``ts, observed, expected, lower, upper``. ``changes`` has
    ``ts, id, kind, target, scope, author, rollout, description, confidence``;
    the leading ``top_causes`` candidates (by rank) are drawn larger and red, and
    ``highlight`` (a change id) gets a vertical line. ``now`` is the replay time:
    the data ends there and a grey line marks it. ``arms`` (:func:`arm_frame`) draws a
    running test's arms hour by hour after the data.
    """
    frame = frame if frame is not None else _empty_series()
    if xlim is not None and len(frame):
        # Framewise ranges follow the data shown: cut it to the window rather than
        # setting xlim, which a DynamicMap would freeze at its first frame.
        frame = frame[(frame["ts"] >= xlim[0]) & (frame["ts"] <= xlim[1])]
    lo, hi, rail = _rail(frame)
    title = f"{metric} · {slice_label(filt)}"
    if now is not None:
        title += f" · as of {pd.Timestamp(now):%Y-%m-%d %H:%M} UTC"
    vd = hv.Dimension("observed", label=metric)
    band = hv.Area(frame, "ts", [hv.Dimension("lower", label=metric), "upper"],
                   label="baseline band").opts(color=COLORS["band"], fill_alpha=0.45,
                                               line_alpha=0)
    expected = hv.Curve(frame, "ts", [hv.Dimension("expected", label=metric)],
                        label="expected").opts(color=COLORS["expected"], line_dash="dashed",
                                               line_width=1.5)
    observed = hv.Curve(frame, "ts", [vd, "expected", "lower", "upper"],
                        label="observed").opts(color=COLORS["observed"], line_width=2,
                                               tools=[_series_hover()])
    gaps = gaps if gaps is not None else pd.DataFrame(columns=["start", "end"])
    spans = hv.VSpans(gaps[["start", "end"]] if len(gaps) else
                      pd.DataFrame({"start": pd.Series([], dtype="datetime64[ns]"),
                                    "end": pd.Series([], dtype="datetime64[ns]")}),
                      kdims=["start", "end"], label="data-quality gap").opts(
        color=COLORS["gap"], alpha=0.25)
    onset_line = hv.VLines([pd.Timestamp(onset)] if onset is not None else
                           pd.Series([], dtype="datetime64[ns]"), label="onset").opts(
        color=COLORS["onset"], line_dash="dotted", line_width=2)
    now_line = hv.VLines([pd.Timestamp(now)] if now is not None else
                         pd.Series([], dtype="datetime64[ns]"), label="replay time").opts(
        color=COLORS["now"], line_width=3, alpha=0.6)
    ch = changes if changes is not None else pd.DataFrame(
        columns=["ts", "id", "kind", "target", "scope", "author", "rollout", "description",
                 "confidence"])
    if xlim is not None and len(ch):
        ch = ch[(ch["ts"] >= xlim[0]) & (ch["ts"] <= xlim[1])]
    ch = ch.assign(y=rail)
    vdims = ["y", "id", "kind", "target", "scope", "author", "rollout", "description"]
    # The leading candidates stand out; the long tail of scored changes stays grey.
    is_cause = (ch["rank"] <= top_causes) if len(ch) and "rank" in ch else \
        pd.Series(False, index=ch.index)
    others = hv.Scatter(ch[~is_cause], "ts", vdims, label="change").opts(
        color=COLORS["change"], marker="triangle", size=7, alpha=0.7, tools=[_change_hover()])
    causes = hv.Scatter(ch[is_cause], "ts", vdims, label="candidate cause").opts(
        color=COLORS["cause"], marker="triangle", size=13, line_color="white",
        tools=[_change_hover()])
    hl = ch[ch["id"] == highlight]["ts"] if highlight is not None and len(ch) else []
    hl_line = hv.VLines(list(hl) if len(hl) else pd.Series([], dtype="datetime64[ns]"),
                        label="selected hypothesis").opts(color=COLORS["selected"],
                                                          line_width=1, alpha=0.5)
    overlay = (spans * band * expected * observed * onset_line * now_line * hl_line
               * others * causes)
    for arm, color in (("kept", "#b45309"), ("reverted", "#15803d")):
        a = arms[arms["arm"] == arm] if arms is not None and len(arms) else _ARMS_EMPTY
        overlay = overlay * hv.Curve(a, "ts", hv.Dimension("value", label=metric),
                                     label=f"test arm: {arm}").opts(
            color=color, line_width=2.5, line_dash="dotdash" if arm == "kept" else "solid")
    del lo, hi
    # The legend sits inside the frame, in headroom kept free above the data: a legend
    # outside it ("top") is taken off the figure and put back on every update, and
    # each time Bokeh re-walks the page's whole model graph (about 0.1 s a click).
    return _framewise(overlay).opts(title=title, height=height, responsive=True, show_grid=True,
                        legend_position="top_left", legend_cols=9, xlabel="time (UTC)",
                        legend_opts={"background_fill_alpha": 0.8, "padding": 4,
                                     "margin": 4},
                        padding=(0, (0.02, 0.2)),
                        ylabel=metric, framewise=True, active_tools=["pan", "wheel_zoom"],
                        toolbar="right")


def _empty_series() -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns]"),
                         **{c: pd.Series([], dtype=float)
                            for c in ("observed", "expected", "lower", "upper")}})


def _percent_x_axis(plot, element) -> None:
    """The x axis as percentages, with a formatter of this plot's own.

    The bars element is shared by every served session (``InvestigationData.shared_plot``);
    a formatter *model* in its options would be one Bokeh model put in every session's
    document ("Models must be owned by only a single document"). HoloViews copies the
    tools it is given, not formatters.
    """
    axis = plot.state.xaxis[0] if len(plot.state.xaxis) else None
    fmt = getattr(axis, "formatter", None)
    if not (isinstance(fmt, NumeralTickFormatter) and fmt.format == "0%"):
        # once per plot: a new formatter on every update is a new model in the
        # document, and Bokeh then re-walks the page's whole model graph (each click)
        plot.state.xaxis.formatter = NumeralTickFormatter(format="0%")


def slice_bars(ranked: pd.DataFrame, *, height: int = 320) -> hv.Bars:
    """Ranked slices as horizontal bars of their share of the divergence (click to drill)."""
    df = ranked[["slice", "share", "relative_change", "source"]].copy() if len(ranked) else \
        pd.DataFrame({"slice": ["(no slices)"], "share": [0.0], "relative_change": [0.0],
                      "source": ["breakdown"]})
    df["share"] = df["share"].astype(float).fillna(0.0)
    df["relative_change"] = df["relative_change"].astype(float)
    df = df.iloc[::-1]  # bars draw bottom-up: put the first-ranked on top
    hover = HoverTool(tooltips=[("slice", "@slice"), ("share of divergence", "@share{0%}"),
                                ("change in the slice", "@relative_change{+0.0%}"),
                                ("found by", "@source")], description="Slice details")
    return hv.Bars(df, hv.Dimension("slice", label="slice"),
                   [hv.Dimension("share", label="share of the divergence"), "relative_change",
                    "source"]).opts(
        invert_axes=True, color="source",
        cmap={"localized": COLORS["localized"], "breakdown": COLORS["breakdown"]},
        tools=[hover, "tap"], height=height, responsive=True, framewise=True,
        hooks=[_percent_x_axis],
        title="Slices by share of the divergence (click to drill down)",
        show_legend=False, nonselection_alpha=0.5)


def slice_heatmap(df: pd.DataFrame, x: str, y: str, *, height: int = 320) -> hv.HeatMap:
    """Share of the divergence per ``(x, y)`` cell (click a cell to drill into it).

    The key dimensions are always named ``x`` and ``y`` (labelled with the real
    dimension names) so a DynamicMap can switch dimensions without rebuilding.
    """
    if len(df):
        df = df.rename(columns={x: "x", y: "y"})[["x", "y", "share", "relative_change"]]
    else:
        df = pd.DataFrame({"x": ["-"], "y": ["-"], "share": [0.0], "relative_change": [0.0]})
    hover = HoverTool(tooltips=[(x, "@x"), (y, "@y"), ("share of divergence", "@share{0%}"),
                                ("change in the cell", "@relative_change{+0.0%}")],
                      description="Cell details")
    m = float(np.nanmax(np.abs(df["share"].to_numpy(dtype=float)))) if len(df) else 1.0
    return hv.HeatMap(df, [hv.Dimension("x", label=x), hv.Dimension("y", label=y)],
                      ["share", "relative_change"]).opts(
        cmap="RdBu_r", clim=(-max(m, 1e-9), max(m, 1e-9)), colorbar=True, tools=[hover, "tap"],
        height=height, responsive=True, framewise=True, xrotation=30, xlabel=x, ylabel=y,
        title=f"Share of the divergence by {x} × {y} (click a cell)")


def rate_mix_bars(df: pd.DataFrame, dimension: str, *, metric: str, ratio: bool = True,
                  height: int = 300) -> hv.Bars:
    """Each value's contribution to the slice's change: rate (within) vs mix (between).

    For a ratio metric the contributions are in percentage points.
    """
    if len(df) and ratio:
        df = df.assign(rate=100 * df["rate"], mix=100 * df["mix"])
    if not len(df):
        long = pd.DataFrame({"value": ["-"], "component": ["rate"], "contribution": [0.0]})
    else:
        long = df.melt(id_vars=["value"], value_vars=["rate", "mix"], var_name="component",
                       value_name="contribution")
    hover = HoverTool(tooltips=[(dimension, "@value"), ("part", "@component"),
                                ("contribution to the change",
                                 "@contribution{+0.000}" + (" pp" if ratio else ""))],
                      description="Rate vs mix")
    return hv.Bars(long, [hv.Dimension("value", label=dimension), "component"],
                   hv.Dimension("contribution", label=f"contribution to Δ{metric}"
                                + (" (pp)" if ratio else ""))).opts(
        color="component", cmap={"rate": COLORS["rate"], "mix": COLORS["mix"]},
        tools=[hover], height=height, responsive=True, framewise=True, xrotation=30,
        title=f"Rate vs mix by {dimension}: rate = the value's own change, "
              "mix = its traffic share moving", show_legend=True, legend_position="top_right")


def _size(width: int | None) -> dict:
    return {"width": width, "responsive": False} if width else {"responsive": True}


def effect_plot(causes: list[dict], selected: int = 0, *, height: int = 260,
                width: int | None = None) -> hv.Overlay:
    """Effect estimates with 95% intervals of the candidate causes that have one."""
    rows = []
    for i, c in enumerate(causes[:8]):
        e = c.get("effect")
        if not e:
            continue
        rows.append({"cause": f"#{i + 1} {c['change_id']}", "target": c["target"],
                     "estimate": 100 * e["estimate"], "lo": 100 * (e["estimate"] - e["ci_low"]),
                     "hi": 100 * (e["ci_high"] - e["estimate"]), "ci_low": 100 * e["ci_low"],
                     "ci_high": 100 * e["ci_high"], "selected": "selected" if i == selected
                     else "other"})
    df = pd.DataFrame(rows, columns=["cause", "target", "estimate", "lo", "hi", "ci_low",
                                     "ci_high", "selected"])
    if df.empty:
        df = pd.DataFrame({"cause": ["(none)"], "target": ["-"], "estimate": [0.0], "lo": [0.0],
                           "hi": [0.0], "ci_low": [0.0], "ci_high": [0.0],
                           "selected": ["other"]})
    df = df.iloc[::-1]
    hover = HoverTool(tooltips=[("cause", "@cause"), ("target", "@target"),
                                ("effect", "@estimate{+0.0}%"),
                                ("95% CI", "@ci_low{+0.0}% .. @ci_high{+0.0}%")],
                      description="Effect estimate")
    kd = hv.Dimension("cause", label="candidate")
    vd = hv.Dimension("estimate", label="difference-in-differences effect (%)")
    err = hv.ErrorBars(df, kd, [vd, "lo", "hi"]).opts(invert_axes=True, line_width=2,
                                                       color=COLORS["other"])
    pts = hv.Scatter(df, kd, [vd, "ci_low", "ci_high", "selected", "target"]).opts(
        invert_axes=True, color="selected", size=11, tools=[hover],
        cmap={"selected": COLORS["selected"], "other": COLORS["other"]})
    return _framewise(err * pts).opts(height=height, **_size(width), framewise=True,
                                   title="Effect of each candidate (95% CI)", show_legend=False)


def counterfactual_plot(frame: pd.DataFrame, *, metric: str, filt: dict | None,
                        change_ts=None, label: str = "", height: int = 300,
                        width: int | None = None,
                        expected_label: str = "expected without it") -> hv.Overlay:
    """Observed against the baseline expectation ("without the change"), from the change on.

    The expectation is the seasonal baseline of the change's scope, not a causal
    model of the world without the change; the legend says so. Given DoWhy's
    counterfactual (``expected_label="without the change"``), the dashed line
    and band are that model's and the title says "Observed vs without the change".
    """
    frame = frame if frame is not None else _empty_series()
    if change_ts is not None and len(frame):
        t0 = pd.Timestamp(change_ts)
        frame = frame[(frame["ts"] >= t0 - pd.Timedelta(hours=36)) &
                      (frame["ts"] <= t0 + pd.Timedelta(hours=72))]
    band = hv.Area(frame, "ts", [hv.Dimension("lower", label=metric), "upper"],
                   label="band").opts(color=COLORS["band"], fill_alpha=0.4, line_alpha=0)
    cf = hv.Curve(frame, "ts", [hv.Dimension("expected", label=metric)],
                  label=expected_label).opts(
        color=COLORS["expected"], line_dash="dashed", line_width=2)
    obs = hv.Curve(frame, "ts", [hv.Dimension("observed", label=metric)],
                   label="observed").opts(color=COLORS["observed"], line_width=2)
    line = hv.VLines([pd.Timestamp(change_ts)] if change_ts is not None else
                     pd.Series([], dtype="datetime64[ns]"), label="change").opts(
        color=COLORS["cause"], line_dash="dotted", line_width=2)
    what = "expected" if expected_label.startswith("expected") else expected_label
    return _framewise(band * cf * obs * line).opts(
        title=f"Observed vs {what} {label}".strip(),
        height=height, **_size(width), framewise=True, show_grid=True,
        legend_position="bottom", legend_cols=2, xlabel="time (UTC)", ylabel=metric)
