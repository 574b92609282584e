"""workbench/ui/plots.py: every element renders to Bokeh, empty or full."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from workbench.ui import plots
from workbench.ui.data import InvestigationData

hv.extension("bokeh", logo=False)


@pytest.fixture(scope="module")
def data(demo_inv):
    return InvestigationData(demo_inv)


def test_timeline_has_band_onset_markers_and_title(data):
    fr = data.timeline({"platform": "ios"})
    end = fr["ts"].max()
    el = plots.timeline_plot(fr, metric="conversion_rate", filt={"platform": "ios"},
                             changes=data.changes(), gaps=pd.DataFrame(
                                 {"start": [end - pd.Timedelta("30h")],
                                  "end": [end - pd.Timedelta("25h")]}),
                             onset=data.onset.tz_localize(None),
                             xlim=(end - pd.Timedelta("7D"), end), highlight="chg-0431")
    fig = hv.render(el)
    assert fig.title.text == "conversion_rate · platform=ios"
    labels = {it.label["value"] for it in fig.legend[0].items}
    assert {"baseline band", "observed", "expected", "onset", "change", "candidate cause",
            "data-quality gap"} <= labels
    hovers = [t for t in fig.tools if type(t).__name__ == "HoverTool"]
    assert any(("author", "@author") in t.tooltips for t in hovers)


def test_empty_inputs_render(data):
    for el in (plots.timeline_plot(None, metric="m"), plots.slice_bars(pd.DataFrame(
            columns=["slice", "share", "relative_change", "source"])),
               plots.slice_heatmap(pd.DataFrame(), "a", "b"),
               plots.rate_mix_bars(pd.DataFrame(), "d", metric="m"),
               plots.effect_plot([]), plots.counterfactual_plot(None, metric="m", filt={})):
        fig = hv.render(el)
        # an empty input shows nothing made up: no points, or placeholders at zero
        sources = [r.data_source.data for r in fig.renderers if hasattr(r, "data_source")]
        assert sources, type(el).__name__
        numbers = [np.asarray(v, dtype=float) for d in sources for v in d.values()
                   if np.asarray(v).dtype.kind in "if"]
        assert all(not np.nansum(np.abs(v)) for v in numbers), (type(el).__name__, sources)


def test_slice_plots_render(data):
    hv.render(plots.slice_bars(data.ranked_slices({})))
    hv.render(plots.slice_heatmap(data.heatmap({}, "platform", "app_version"),
                                  "platform", "app_version"))
    hv.render(plots.rate_mix_bars(data.rate_mix({}, "platform"), "platform", metric="m"))
    fig = hv.render(plots.effect_plot(data.causes, 0, width=400))
    assert fig.width == 400
