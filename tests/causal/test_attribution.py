"""gcm distribution-change attribution names the mechanism that changed."""
from __future__ import annotations


from workbench.causal import attribute_mechanisms
from workbench.causal.graph import MeasureGraph


def _attribute(inc, **kw):
    with inc.store() as st:
        sp = st.passport()
        spec = sp.manifest.metric(inc.truth["metric"])
        return attribute_mechanisms(st.con, sp, spec, onset=inc.onset, end=inc.end,
                                    slice=inc.truth["slice"], **kw)


def test_conversion_drop_is_the_conversions_mechanism(scoped):
    a = _attribute(scoped)
    # the metric is a node of its own, conversions / sessions
    assert a.target == "conversion_rate"
    assert set(a.graph.parents("conversion_rate")) == {"conversions", "sessions"}
    assert a.top == "conversions"
    assert a.changed["conversions"]
    assert a.change < 0 and a.contributions["conversions"] < 0
    # the graph is the manifest's default: sessions and latency feed conversions
    assert set(a.graph.parents("conversions")) == {"sessions", "latency_ms_sum"}
    assert "the conversions mechanism" in a.evidence()
    frame = a.to_frame()
    assert frame.loc[0, "node"] == "conversions"


def test_traffic_drop_is_the_sessions_mechanism(traffic_drop):
    a = _attribute(traffic_drop)  # metric sessions: the root itself
    assert a.top == "sessions" and a.changed["sessions"]
    # conversions fell too, but through sessions: its own mechanism is not what moved most
    b = _attribute(traffic_drop, target="conversions")
    assert b.top == "sessions"
    assert b.change < 0
    assert abs(b.contributions["sessions"]) > abs(b.contributions["conversions"])


def test_graph_yaml_edges_are_used(scoped):
    g = {"edges": [["sessions", "conversions"]]}  # as Passport.graph holds graph.yaml
    a = _attribute(scoped, graph=g)
    assert a.graph == MeasureGraph((("sessions", "conversions"),
                                    ("conversions", "conversion_rate"),
                                    ("sessions", "conversion_rate")), "graph.yaml")
    assert set(a.contributions) == {"sessions", "conversions"}  # no latency: not in the graph
    assert a.top == "conversions"


def test_attribution_is_deterministic_and_quick(scoped):
    a, b = _attribute(scoped), _attribute(scoped)
    assert b.seconds < 5  # DoWhy already imported: sampled rows keep gcm quick
    da, db = a.to_dict(), b.to_dict()
    da.pop("seconds"), db.pop("seconds")
    assert da == db
