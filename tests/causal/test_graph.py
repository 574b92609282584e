"""graph.yaml validation and the default graph of a manifest."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.causal.graph import default_graph, load_graph
from workbench.errors import PassportError
from workbench.passport import load_passport


@pytest.fixture(scope="module")
def manifest():
    return load_passport(Path(__file__).resolve().parents[2] / "sample_data" / "demo").manifest


def test_default_graph_of_the_demo(manifest):
    g = default_graph(manifest)
    assert g.source == "default"
    assert set(g.edges) == {("sessions", "conversions"), ("sessions", "latency_ms_sum"),
                            ("latency_ms_sum", "conversions"), ("conversions", "revenue")}
    assert g.parents("conversions") == ("sessions", "latency_ms_sum")
    assert g.ancestors("revenue") == {"conversions", "sessions", "latency_ms_sum"}


def test_no_graph_means_the_default(manifest):
    assert load_graph(None, manifest) == default_graph(manifest)


def test_unknown_measure_is_named_with_the_valid_ones(manifest):
    with pytest.raises(PassportError, match="'visits', which is not a measure.*sessions, "
                                            "conversions, revenue, latency_ms_sum"):
        load_graph({"edges": [["visits", "conversions"]]}, manifest)


def test_cycle_is_refused(manifest):
    with pytest.raises(PassportError, match="cycle"):
        load_graph({"edges": [["sessions", "conversions"], ["conversions", "sessions"]]},
                   manifest)


@pytest.mark.parametrize("bad", [[], {"nodes": ["sessions"]}, {"edges": [["sessions"]]}])
def test_malformed_graph_is_refused(manifest, bad):
    with pytest.raises(PassportError, match="graph.yaml"):
        load_graph(bad, manifest)
