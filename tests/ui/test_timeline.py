"""The served timeline: plain columns shared by every session, one Bokeh figure each.

A slice click must change the figure's sources, title and ranges in place (no model
created: nothing but data goes to the page), and two sessions showing the same slice
read the same columns (computed once) into models of their own.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings(  # as in test_served_roles: panel 1.9 and ``name``
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")


def _frame(n: int = 240, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-11-01", periods=n, freq="h")
    obs = 0.05 + rng.normal(0, 0.002, n)
    return pd.DataFrame({"ts": ts, "observed": obs, "expected": np.full(n, 0.05),
                         "lower": np.full(n, 0.046), "upper": np.full(n, 0.054)})


def _changes(ts: list[str], ranks: list[float]) -> pd.DataFrame:
    n = len(ts)
    return pd.DataFrame({"ts": pd.to_datetime(ts), "id": [f"chg-{i}" for i in range(n)],
                         "kind": ["deploy"] * n, "target": ["checkout"] * n,
                         "scope": ["-"] * n, "author": ["ana"] * n, "rollout": ["-"] * n,
                         "description": [""] * n, "rank": ranks})


def _drawn(cols: dict, legend_rows: int) -> dict:
    """A source's columns without its first ``legend_rows`` (undrawn: NaN coordinates)."""
    xs = cols["x"] if "x" in cols else cols["ts"]
    assert np.isnan(np.asarray(xs[:legend_rows], dtype=float)).all()
    return {k: (list(v[legend_rows:]) if isinstance(v, list) else v[legend_rows:])
            for k, v in cols.items()}


def test_columns_cut_to_the_window_split_causes_and_keep_headroom():
    from workbench.ui.timeline import timeline_columns

    frame = _frame()
    xlim = (pd.Timestamp("2026-11-04"), pd.Timestamp("2026-11-08"))
    ch = _changes(["2026-11-02", "2026-11-05", "2026-11-06", "2026-11-07"],
                  [1.0, 2.0, 9.0, np.nan])
    cols = timeline_columns(frame, metric="cr", filt={"platform": "ios"}, changes=ch,
                            onset=pd.Timestamp("2026-11-05 12:00"), xlim=xlim,
                            highlight="chg-1", top_causes=5)
    assert cols["title"] == "cr · platform=ios"
    ts = cols["series"]["ts"]
    assert len(ts) == 97  # 4 days of hours, both ends included
    assert ts.min() == pd.Timestamp("2026-11-04").value / 1e6
    # the change before the window is gone; rank <= 5 is a candidate cause, drawn last,
    # after the two undrawn legend rows (a change, a candidate cause)
    marks = _drawn(cols["changes"], 2)
    assert marks["id"] == ["chg-2", "chg-3", "chg-1"]
    assert list(marks["cause"]) == [False, False, True]
    assert list(marks["size"]) == [7.0, 7.0, 13.0]
    # the vertical lines: one row each, with its style, after the three legend rows
    lines = _drawn(cols["marks"], 3)
    assert list(lines["x"]) == [pd.Timestamp("2026-11-05 12:00").value / 1e6,
                                pd.Timestamp("2026-11-05").value / 1e6]
    assert lines["dash"] == ["dotted", "solid"]
    assert cols["shown"] == {"onset", "selected hypothesis", "change", "candidate cause"}
    lo, hi = cols["y_range"]
    obs = cols["series"]["observed"]
    # the change markers sit on a rail below the data; the legend's headroom above it
    assert lo < marks["y"][0] < obs.min()
    assert hi > obs.max() + 0.2 * (obs.max() - lo)
    assert cols["x_range"] == (xlim[0].value / 1e6, xlim[1].value / 1e6)


def test_a_replay_moment_and_no_data():
    from workbench.ui.timeline import timeline_columns

    cols = timeline_columns(None, metric="cr")
    assert cols["title"] == "cr · everything"
    assert len(cols["series"]["observed"]) == 0 and cols["x_range"] == (0.0, 1.0)
    now = pd.Timestamp("2026-11-05 06:00")
    cols = timeline_columns(_frame(), metric="cr", now=now)
    assert cols["title"] == "cr · everything · as of 2026-11-05 06:00 UTC"
    assert list(_drawn(cols["marks"], 3)["x"]) == [now.value / 1e6]
    assert cols["shown"] == {"replay time"}


def test_a_running_tests_arms_in_one_source_by_hour():
    from workbench.ui.timeline import timeline_columns

    arms = pd.DataFrame({"ts": pd.to_datetime(["2026-11-11 01:00", "2026-11-11 01:00",
                                               "2026-11-11 02:00"]),
                         "arm": ["kept", "reverted", "kept"], "value": [0.03, 0.09, 0.031]})
    cols = timeline_columns(_frame(), metric="cr", arms=arms)
    got = cols["arms"]
    assert list(got["ts"]) == [pd.Timestamp("2026-11-11 01:00").value / 1e6,
                               pd.Timestamp("2026-11-11 02:00").value / 1e6]
    assert list(got["kept"]) == [0.03, 0.031]
    assert got["reverted"][0] == 0.09 and np.isnan(got["reverted"][1])
    # the axes reach the test's hours and its values
    assert cols["x_range"][1] == got["ts"][-1] and cols["y_range"][1] > 0.09


def test_show_changes_data_title_and_ranges_in_place():
    from bokeh.document import Document

    from workbench.ui.timeline import TimelineFigure, timeline_columns

    fig = TimelineFigure("cr", height=300)
    doc = Document()
    doc.add_root(fig.figure)
    ids = {m.id for m in doc.models}
    a = timeline_columns(_frame(seed=1), metric="cr", filt={})
    b = timeline_columns(_frame(seed=2), metric="cr", filt={"country": "de"})
    fig.show(a)
    fig.show(b)
    assert {m.id for m in doc.models} == ids  # nothing created, nothing dropped
    assert fig.figure.title.text == "cr · country=de"
    src = fig.sources["series"].data
    assert np.array_equal(src["observed"], b["series"]["observed"])
    assert not np.array_equal(src["observed"], a["series"]["observed"])
    assert (fig.y_range.start, fig.y_range.end) == b["y_range"]
    # the legend lists what is drawn: no gap, no replay time, no test, no change here
    assert _legend(fig) == {"baseline band", "expected", "observed"}
    fig.show(timeline_columns(
        _frame(seed=2), metric="cr", now=pd.Timestamp("2026-11-05 06:00"),
        onset=pd.Timestamp("2026-11-05"), highlight="chg-1",
        changes=_changes(["2026-11-03", "2026-11-04"], [1.0, 8.0]),
        arms=pd.DataFrame({"ts": pd.to_datetime(["2026-11-11 01:00"]), "arm": ["kept"],
                           "value": [0.05]})))
    assert {m.id for m in doc.models} == ids
    assert _legend(fig) == {"baseline band", "expected", "observed", "onset", "replay time",
                            "selected hypothesis", "change", "candidate cause",
                            "test arm: kept"}


def _legend(fig) -> set[str]:
    """The legend's labels as the page draws them: a fixed label when its item is
    visible, and each distinct value of a field label in its renderer's source."""
    out = set()
    for item in fig.figure.legend[0].items:
        label = item.label
        if not item.visible:
            continue
        if hasattr(label, "field"):
            out.update(item.renderers[0].data_source.data[label.field])
        else:
            out.add(label.value)
    return out


#: a glyph's visual properties end so (its coordinates do not)
VISUAL = {"color", "alpha", "width", "dash"}


def _legend_rows(item, data: dict) -> dict[str, int]:
    """Each label a legend entry draws and the row of its renderer's source it draws it
    from, as BokehJS does (``GlyphRendererView.draw_legend``): ``index`` when set, else
    for a field label the first row holding each value, else the first row."""
    if item.index is not None:
        return {item.label.value: item.index}
    if hasattr(item.label, "field"):
        values = list(data[item.label.field])
        return {v: values.index(v) for v in dict.fromkeys(values)}
    return {item.label.value: 0}


def test_the_legend_reads_rows_every_column_set_holds_alike():
    """A regression test of the page error after a replay ("RangeError: Offset is
    outside the bounds of the DataView"): BokehJS can paint the legend when a patch
    has given a source its new columns but the glyph still holds the old ones (a
    layout change later in the same patch paints at once; the glyph takes the new
    columns asynchronously). So whatever was shown before, every row a legend entry
    reads in the new columns must exist in the old ones, with the same style."""
    from bokeh.core.property.vectorization import Field

    from workbench.ui.timeline import TimelineFigure, timeline_columns

    frame = _frame()
    moments = {  # a replay moment (no cause yet), the live view, a selected cause, nothing
        "replay": timeline_columns(frame, metric="cr", now=pd.Timestamp("2026-11-05 06:00"),
                                   changes=_changes(["2026-11-03", "2026-11-04"], [9.0, 8.0])),
        "live": timeline_columns(frame, metric="cr", onset=pd.Timestamp("2026-11-05"),
                                 highlight="chg-2", changes=_changes(
                                     ["2026-11-03", "2026-11-04", "2026-11-05"],
                                     [9.0, 8.0, 1.0])),
        "empty": timeline_columns(None, metric="cr"),
    }
    fig = TimelineFigure("cr")
    key_of = {src.id: key for key, src in fig.sources.items()}
    checked = 0
    for old_name, old in moments.items():
        for new_name, new in moments.items():
            fig.show(new)
            for item in fig.figure.legend[0].items:
                if not item.visible:
                    continue
                r = item.renderers[0]
                key = key_of[r.data_source.id]
                before, after = old[key], new[key]
                if not len(next(iter(before.values()))):
                    continue  # the browser draws no entry from an empty glyph
                styles = [v.field for name, v in r.glyph.properties_with_values().items()
                          if isinstance(v, Field) and v.field in after and (
                              name == "size" or name.rsplit("_", 1)[-1] in VISUAL)]
                for label, row in _legend_rows(item, after).items():
                    where = f"{label!r} ({old_name} -> {new_name})"
                    assert row < len(next(iter(before.values()))), where
                    for col in styles if row < len(next(iter(after.values()))) else []:
                        was, now = before[col][row], after[col][row]
                        assert was == now or (pd.isna(was) and pd.isna(now)), (where, col)
                    checked += 1
    assert checked > 30  # every moment's entries, from every other moment


def test_two_sessions_share_the_columns_not_the_models(demo_inv):
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from workbench.ui.data import InvestigationData
    from workbench.ui.state import WorkbenchState
    from workbench.ui.views import DivergenceView

    live = InvestigationData(demo_inv)
    views = []
    for _ in range(2):
        doc = Document()
        with set_curdoc(doc):
            v = DivergenceView(state=WorkbenchState.from_data(live))
            v.__panel__().server_doc(doc)
        views.append((v, doc))
    (v1, d1), (v2, d2) = views
    assert not {m.id for m in d1.models} & {m.id for m in d2.models}
    assert v1._columns() is v2._columns()  # one set of columns for both sessions
    target = dict(live.slices[0]["filter"])
    with set_curdoc(d1):
        v1.state.drill_to(target)
    title = v1._fig.figure.title.text
    assert title.startswith(f"{live.metric} · ") and "everything" not in title
    assert v2._fig.figure.title.text == f"{live.metric} · everything"
    observed = v1._fig.sources["series"].data["observed"]
    expected = live.timeline(target)["observed"].to_numpy(dtype=float)[-len(observed):]
    assert np.allclose(observed, expected, equal_nan=True)


def test_a_click_on_a_bar_drills_into_its_slice(demo_inv):
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from workbench.ui.data import InvestigationData, slice_label
    from workbench.ui.state import WorkbenchState
    from workbench.ui.views import SliceExplorer

    live = InvestigationData(demo_inv)
    doc = Document()
    with set_curdoc(doc):
        view = SliceExplorer(state=WorkbenchState.from_data(live))
        view.__panel__().server_doc(doc)
        bars = view._barfig
        ranked = live.ranked_slices({})
        # first-ranked on top: the last factor of the range
        assert bars.y_range.factors[-1] == ranked.iloc[0]["slice"]
        assert bars.figure.xaxis[0].formatter.format == "0%"
        ids = {m.id for m in doc.models}
        target = dict(ranked.iloc[1]["filter"])
        i = list(bars.source.data["slice"]).index(slice_label(target))
        bars.source.selected.indices = [i]  # what the browser sends on a tap
    assert view.state.slice_filter == target
    assert bars.source.selected.indices == []
    assert list(bars.source.data["slice"]) == \
        list(live.ranked_slices(target)["slice"].drop_duplicates())[::-1]
    assert {m.id for m in doc.models} == ids  # refilled in place


def test_the_figures_pass_bokehs_integrity_checks():
    """The served app turns Bokeh's per-session document validation off (a cost on every
    page); the checks run here instead, on both figures with data in them."""
    from bokeh.core.validation import check_integrity
    from bokeh.document import Document

    from workbench.ui.timeline import SliceBars, TimelineFigure, bar_columns, timeline_columns

    fig, bars = TimelineFigure("cr"), SliceBars(lambda label: None)
    fig.show(timeline_columns(_frame(), metric="cr", onset=pd.Timestamp("2026-11-05"),
                              changes=_changes(["2026-11-03", "2026-11-04"], [1.0, 8.0])))
    bars.show(bar_columns(None))
    doc = Document()
    doc.add_root(fig.figure)
    doc.add_root(bars.figure)
    issues = check_integrity(list(doc.models))
    assert not issues.error and not issues.warning, issues
