"""workbench/ui/data.py: the frames behind the views agree with the investigation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.ui.data import InvestigationData, parse_slice, slice_label

IOS52 = {"platform": "ios", "app_version": "5.2"}


@pytest.fixture(scope="module")
def data(demo_inv):
    return InvestigationData(demo_inv)


def test_slice_labels_round_trip():
    assert slice_label({}) == "everything"
    assert slice_label(IOS52) == "platform=ios, app_version=5.2"
    assert parse_slice(slice_label(IOS52)) == IOS52
    assert parse_slice("everything") == {} and parse_slice("") == {}


def test_whole_timeline_is_the_investigations_detection(data, demo_inv):
    fr = data.timeline({})
    exp = demo_inv.detection.expected
    assert len(fr) == len(exp)
    np.testing.assert_allclose(fr["expected"].to_numpy(), exp["expected"].to_numpy())
    assert fr["ts"].dt.tz is None  # zone-free UTC for Bokeh
    assert fr.attrs["filter"] == {}


def test_slice_timeline_has_its_own_band_and_shows_the_drop(data):
    fr = data.timeline(IOS52)
    assert fr.attrs["filter"] == IOS52
    onset = data.onset.tz_localize(None)
    before = fr[(fr["ts"] < onset) & (fr["ts"] >= onset - pd.Timedelta("3D"))]
    after = fr[fr["ts"] >= onset]
    # Before the flag the slice sits in its band; after, well below its expectation.
    assert ((before["observed"] >= before["lower"]) & (before["observed"] <= before["upper"])
            ).mean() > 0.8
    assert (after["observed"] / after["expected"]).median() == pytest.approx(0.6, abs=0.1)
    assert data.timeline(IOS52) is fr  # cached


def test_ranked_slices_put_the_culprit_first(data):
    r = data.ranked_slices({})
    assert r.iloc[0]["filter"].items() >= IOS52.items()
    assert r.iloc[0]["source"] == "localized"
    child = data.ranked_slices({"platform": "ios"})
    assert all(f["platform"] == "ios" for f in child["filter"])
    assert "platform=ios, app_version=5.2" in set(child["slice"])


def test_heatmap_and_rate_mix(data):
    h = data.heatmap({}, "platform", "app_version")
    top = h.sort_values("share", ascending=False).iloc[0]
    assert (top["platform"], top["app_version"]) == ("ios", "5.2")
    rm = data.rate_mix({}, "app_version")
    lv = data.leaves()
    r0 = lv["base_num"].sum() / lv["base_den"].sum()
    r1 = lv["obs_num"].sum() / lv["obs_den"].sum()
    # Kitagawa: rate + mix add up to the change of the rate, exactly.
    assert rm["rate"].sum() + rm["mix"].sum() == pytest.approx(r1 - r0, rel=1e-9)


def test_changes_hover_fields_and_gaps(data):
    ch = data.changes()
    assert {"ts", "id", "kind", "target", "scope", "author", "rollout"} <= set(ch.columns)
    row = ch[ch["id"] == "chg-0431"].iloc[0]
    assert row["kind"] == "flag" and row["target"] == "new_checkout_flow"
    assert "platform=ios" in row["scope"] and row["rank"] == 1
    assert list(data.gaps().columns) == ["start", "end", "label", "severity"]


def test_impact_in_numerator_units(data):
    imp = data.impact(IOS52)
    assert imp["relative_change"] == pytest.approx(-0.4, abs=0.08)
    assert imp["delta"] < 0 and imp["hours"] > 24


def test_search_finds_changes_and_slices(data):
    hits = data.search("new_checkout_flow ios")
    assert hits.iloc[0]["key"] == "chg-0431"
    s = data.search("app_version 5.2")
    assert "slice" in set(s["type"])
    assert data.search("").empty


def test_dimension_values_group_the_leaves_once(demo_inv, monkeypatch):
    """The slice selector asks for every dimension's values on each click: the answer
    for a dimension and filter is grouped from the leaves table once, then cached."""
    data = InvestigationData(demo_inv)
    lv = data.leaves()
    grouped = []
    real_mask = InvestigationData._mask

    def counting_mask(lv_, filt):
        grouped.append(dict(filt or {}))
        return real_mask(lv_, filt)

    monkeypatch.setattr(InvestigationData, "_mask", staticmethod(counting_mask))
    first = data.values("platform")
    assert first[0] in set(lv["platform"]) and len(first) == lv["platform"].nunique()
    for _ in range(3):
        assert data.values("platform") == first
        assert data.values("app_version", {"platform": "ios"}) == \
            data.values("app_version", {"platform": "ios"})
    assert grouped == [{}, {"platform": "ios"}]
    # A caller changing its list does not change the cached answer.
    data.values("platform").append("x")
    assert data.values("platform") == first


def test_search_finds_every_matching_dimension_value(data):
    """Dimension values are searched column-wise (no item per value): the hits are
    exactly the values whose ``d = v`` text holds every word, busiest first."""
    lv = data.leaves()
    hits = data.search("country", limit=500)
    values = hits[hits["detail"] == "dimension value"]
    expected = {f"country={v}" for v in lv["country"].unique()}
    expected -= {slice_label(s["filter"]) for s in data.slices}
    assert set(values["key"]) == expected and len(values) == len(expected)
    busiest = data.values("country")[0]
    assert values.iloc[0]["key"] == f"country={busiest}"
    one = data.search(f"country={busiest}")
    assert one.iloc[0]["key"] == f"country={busiest}"
    assert data.search("country=no-such-value").empty


def test_a_many_valued_dimension_is_capped_in_lists(data, monkeypatch):
    """Widgets list the busiest values only; the heatmap keeps the values that explain
    most of the divergence on each axis."""
    import workbench.ui.data as data_mod

    every = data.values("country")
    assert len(every) > 3
    assert data.values("country", limit=3) == every[:3]
    monkeypatch.setattr(data_mod, "HEATMAP_VALUES", 3)
    fresh = InvestigationData(data.inv)
    heat = fresh.heatmap({}, "country", "platform")
    assert heat["country"].nunique() == 3
    full = data.heatmap({}, "country", "platform")
    dev = full.groupby("country")["share"].sum().abs().sort_values(ascending=False)
    assert set(heat["country"]) == set(dev.index[:3])



def test_a_many_valued_dimension_is_searched_in_the_store(data, monkeypatch):
    """Above WIDGET_VALUES distinct values, the search box asks the store (one query on
    the dimension's dictionary, tokens as parameters, LIMIT): it finds the same values
    as the in-memory search, never builds the value list, and stops at the limit."""
    import workbench.ui.data as data_mod

    lv = data.leaves()
    localized = {slice_label(s["filter"]) for s in data.slices}
    expected = {f"country={v}" for v in lv["country"].unique()} - localized
    monkeypatch.setattr(data_mod, "WIDGET_VALUES", 2)
    assert data.cardinality["country"] == lv["country"].nunique() > 2

    def never(self, dimension):
        raise AssertionError(f"{dimension}: its values were listed in Python")

    monkeypatch.setattr(InvestigationData, "_value_texts", never)
    hits = data.search("country", limit=500)
    values = hits[hits["detail"] == "dimension value"]
    assert set(values["key"]) == expected and len(values) == len(expected)
    one = sorted(lv["country"].unique())[-1]
    assert data.search(f"country={one}").iloc[0]["key"] == f"country={one}"
    assert len(data.search("country", limit=2)) == 2
    # a quote is text to find, not SQL
    assert data.search("country=' OR 1=1 --").empty


# panel 1.9 deprecates the widgets' ``name`` (the views still set it), as in test_served_roles
@pytest.mark.filterwarnings(
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")
def test_plots_are_built_once_for_every_session(data):
    """Two served sessions showing the same slice share one set of timeline columns (each
    fills its own Bokeh figure from it); another frame under the same key gets its own."""
    from workbench.ui.state import WorkbenchState
    from workbench.ui.views import DivergenceView

    a, b = (DivergenceView(state=WorkbenchState.from_data(data)) for _ in range(2))
    for v in (a, b):
        v.state.drill_to(IOS52)
    plot_a, plot_b = a._columns(), b._columns()
    assert plot_a is plot_b
    assert plot_a["title"] == "conversion_rate · platform=ios, app_version=5.2"
    assert a._fig.figure.title.text == plot_a["title"]
    b.state.hypothesis = 1  # another highlighted cause: other columns
    assert b._columns() is not plot_a
    built = []
    other = data.timeline(IOS52).copy()  # a frame that is not the cached one
    got = data.shared_plot(("probe",), other, lambda: built.append(1) or "x")
    assert got == "x" and data.shared_plot(("probe",), other, lambda: "y") == "x"
    assert data.shared_plot(("probe",), other.copy(), lambda: "z") == "z"


def test_values_are_ordered_by_traffic_as_a_group_by_says(data):
    """values() sums per value code (through _group_codes); the order is pandas' group-by's."""
    lv = data.leaves()
    ios = lv[lv["platform"] == "ios"]
    want = (ios.groupby("app_version", sort=False)["obs_den"].sum()
            .sort_values(ascending=False, kind="stable").index.tolist())
    assert data.values("app_version", {"platform": "ios"}) == want
    assert len(want) > 2


def test_shared_plots_are_a_bounded_lru(demo_inv):
    """The shared plot columns keep the most recently used entries within the bounds."""
    from workbench.ui._plotcache import PlotCache, nbytes

    data = InvestigationData(demo_inv)
    data._plots = PlotCache(entries=3)
    frame, made = data.timeline({}), []

    def plot(key):
        return data.shared_plot((key,), frame, lambda: made.append(key) or {"k": key})
    for key in "abc":
        plot(key)
    plot("a")  # used again: now the most recent
    plot("d")  # a fourth: the least recently used (b) goes
    assert made == ["a", "b", "c", "d"] and len(data._plots) == 3
    plot("a"), plot("c"), plot("d")
    assert made == ["a", "b", "c", "d"]  # still held
    plot("b")
    assert made == ["a", "b", "c", "d", "b"]  # made again
    # in bytes: columns of 1 MB each under a 2.5 MB bound keep two; one too big is not kept
    data._plots = PlotCache(entries=100, max_bytes=2_500_000)
    col = np.zeros(125_000)  # 1 MB
    assert nbytes({"series": {"y": col}}) > col.nbytes
    for key in "xyz":
        data.shared_plot((key,), frame, lambda: {"series": {"y": col.copy()}})
    assert [k[1] for k in data._plots] == ["y", "z"]
    big = {"series": {"y": np.zeros(500_000)}}
    assert data.shared_plot(("big",), frame, lambda: big) is big
    assert ("plot", "big") not in data._plots and len(data._plots) == 2
