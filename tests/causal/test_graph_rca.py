"""Service-level root-cause ranking on small seeded systems with one injected fault.

The system: ``web`` calls ``api`` and ``auth``; ``api`` calls ``db``; ``batch`` is
not called by ``web``. Latency columns ``<node>_lat`` with noise sd 0.01-0.02 s over
200 normal rows; the fault starts at row 200 (50 rows). Propagation adds the callee's
delay to its caller, as latency does.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.causal.graph_rca import (
    GraphRCAConfig,
    GraphRCAResult,
    call_weights,
    rank_changes_by_root_cause,
    rank_root_causes,
)
from workbench.errors import UsageError

GRAPH = {"web": ["api", "auth"], "api": ["db"], "auth": [], "db": [], "batch": []}
NODES = ["web", "api", "auth", "db", "batch"]
LEVEL = {"web": 0.20, "api": 0.10, "auth": 0.03, "db": 0.05, "batch": 1.0}


def node(col: str) -> str:
    return col.rsplit("_", 1)[0]


def system(rng, *, fault: str = "db", delay: float = 0.3, n: int = 250, start: int = 200,
           noise: dict | None = None) -> pd.DataFrame:
    """Latency per node: its own delay plus its callees' (one call per request), and
    measurement noise of its own."""
    sd = {"web": 0.02, "api": 0.015, "auth": 0.01, "db": 0.01, "batch": 0.05} | (noise or {})
    extra = {k: np.zeros(n) for k in NODES}
    extra[fault][start:] += delay
    extra["api"] = extra["api"] + extra["db"]
    extra["web"] = extra["web"] + extra["api"] + extra["auth"]
    return pd.DataFrame({f"{k}_lat": LEVEL[k] + extra[k] + rng.normal(0, sd[k], n) for k in NODES},
                        index=pd.RangeIndex(n, name="second"))


def rank(df, **kw) -> GraphRCAResult:
    opts = dict(anomaly_start=200, graph=GRAPH, target="web_lat", node_of=node, direction=1)
    return rank_root_causes(df, **(opts | kw))


# --------------------------------------------------------------------------- ranking


def test_root_cause_ranks_first_and_its_callers_are_propagated(rng):
    res = rank(system(rng))
    assert res.target_anomalous
    assert res.root_causes[0] == "db"
    kinds = {c.node: c.kind for c in res.candidates}
    assert kinds["db"] == "origin"
    assert kinds["api"] == kinds["web"] == "propagated"
    assert kinds["auth"] == "normal"
    assert {c.node: c.explained_by for c in res.candidates}["api"] == ("db",)
    # the unrelated service is not a candidate: web does not call it
    assert "batch" not in {c.node for c in res.candidates}


def test_a_louder_symptom_upstream_does_not_outrank_the_root(rng):
    # db is noisy (its score is low) while api and web are quiet (their scores are high):
    # by scores alone the symptoms would win
    res = rank(system(rng, noise={"db": 0.04, "api": 0.002, "web": 0.002}))
    scores = {c.node: c.score for c in res.candidates}
    assert scores["web"] > scores["db"] and scores["api"] > scores["db"]
    assert res.root_causes[0] == "db"
    assert res.rank_of("api") > res.rank_of("db") and res.rank_of("web") > res.rank_of("db")


def test_a_fault_in_a_middle_service_is_not_blamed_on_its_callee(rng):
    res = rank(system(rng, fault="api"))
    assert res.root_causes[0] == "api"
    assert res.rank_of("db") is None  # db is normal: not a root cause at all


def test_a_small_callee_deviation_does_not_explain_a_large_one(rng):
    df = system(rng, fault="api", delay=0.5)
    df.loc[200:, "db_lat"] += 0.05  # db 50 ms slower (anomalous), api 550 ms slower
    df.loc[200:, "api_lat"] += 0.05
    df.loc[200:, "web_lat"] += 0.05
    res = rank(df)
    assert {c.node: c.kind for c in res.candidates}["db"] == "origin"
    assert res.root_causes[0] == "api"


def test_call_weights_scale_what_a_callee_explains(rng):
    # web calls auth on 10% of its requests: auth 1 s slower explains web 0.1 s slower
    df = system(rng, fault="auth", delay=1.0)
    df["web_lat"] -= 0.9 * (df["auth_lat"] - LEVEL["auth"]).where(df.index >= 200, 0.0)
    weights = call_weights(GRAPH, {"web": 100.0, "api": 100.0, "auth": 10.0, "db": 100.0,
                                   "batch": 5.0})
    assert weights["web"] == {"api": 1.0, "auth": 0.1}
    res = rank(df, graph=weights)
    assert res.root_causes[0] == "auth"
    assert {c.node: c.kind for c in res.candidates}["web"] == "propagated"


def test_without_target_or_graph_every_metric_counts(rng):
    df = system(rng, fault="batch", delay=1.0)
    res = rank_root_causes(df, anomaly_start=200, node_of=node)
    assert res.target is None and res.top(1) == ("batch",)
    assert set(res.to_frame()["node"]) == set(NODES)


def test_a_late_anomaly_start_still_finds_the_root(rng):
    # the fault starts at row 200 but is detected 40 rows late: those rows count as normal
    df = system(rng, n=320)
    res = rank(df, anomaly_start=240)
    assert res.root_causes[0] == "db"
    res = rank_root_causes(df, anomaly_start=240, node_of=node)
    assert res.top(1) == ("db",) or res.top(1) == ("web",)  # no graph: the largest score
    assert "db" in res.top(3)


def test_no_root_cause_when_the_target_is_not_anomalous(rng):
    # an alarm where the target stays at its usual level (others jitter as usual)
    df = system(rng, delay=0.0)
    df.loc[200:, "web_lat"] = df["web_lat"].iloc[:200].median()
    res = rank(df)
    assert not res.target_anomalous
    assert res.root_causes == () and res.top(3) == ()
    assert len(res.candidates) > 0  # scored anyway, for the record
    # latency going down is not an incident of a latency target (direction +1)
    res = rank(system(rng, delay=-0.3))
    assert not res.target_anomalous and res.root_causes == ()


def test_a_node_broken_before_the_incident_is_discounted(rng):
    # auth is off its baseline level in every row of the window, not only when web is
    df = system(rng)
    base = df.iloc[:150]
    window = df.iloc[150:].copy()
    window["auth_lat"] += 0.4
    res = rank(window, baseline=base)
    assert res.root_causes[0] == "db"
    assert res.rank_of("auth") is None


def test_candidates_limit_the_ranking_but_excluded_nodes_still_explain(rng):
    res = rank(system(rng), candidates=["web", "api"])
    assert {c.node for c in res.candidates} == {"web", "api"}
    # db is not ranked, yet it still explains api: both eligible nodes are symptoms
    assert {c.node: c.kind for c in res.candidates} == {"web": "propagated", "api": "propagated"}
    assert {c.node: c.explained_by for c in res.candidates}["api"] == ("db",)


def test_missing_values_and_a_datetime_index(rng):
    df = system(rng)
    df.index = pd.date_range("2026-01-01", periods=len(df), freq="1s")
    df.iloc[::7, 3] = np.nan
    df["empty_lat"] = np.nan
    res = rank(df, anomaly_start="2026-01-01 00:03:20")
    assert res.root_causes[0] == "db"
    assert {c.node: c.kind for c in res.candidates}.get("empty", "no data") == "no data"


def test_result_to_frame_and_to_dict(rng):
    res = rank(system(rng))
    frame = res.to_frame()
    assert list(frame.columns) == ["rank", "node", "kind", "score", "metric", "explained_by"]
    assert frame.iloc[0]["node"] == "db" and frame.iloc[0]["metric"] == "db_lat"
    d = res.to_dict()
    assert d["root_causes"][0] == "db" and d["target"] == "web_lat"
    with pytest.raises(AttributeError):
        res.target = "x"  # frozen


def test_graph_forms_agree(rng):
    df = system(rng)
    pairs = [(a, b) for a, bs in GRAPH.items() for b in bs]
    adj = pd.DataFrame(0.0, index=NODES, columns=NODES)
    for a, b in pairs:
        adj.loc[a, b] = 1.0
    tops = {rank(df, graph=g).root_causes for g in (GRAPH, pairs, adj)}
    assert len(tops) == 1


# --------------------------------------------------------------------------- changes


def test_changes_rank_by_the_root_cause_of_their_node(rng):
    res = rank(system(rng))
    log = pd.DataFrame({"change": ["deploy web", "db index dropped", "db error flag", "auth cfg"],
                        "node": ["web", "db", "db", "auth"],
                        "effect": ["latency", "latency", "availability", None]})
    ranked = rank_changes_by_root_cause(res, log, effect="latency")
    assert ranked.iloc[0]["change"] == "db index dropped"
    assert list(ranked["rank"]) == [1, 2, 3, 4]
    assert ranked.iloc[-1]["change"] == "db error flag"  # wrong kind of effect: last
    with pytest.raises(UsageError, match="needs 'change' and 'node'"):
        rank_changes_by_root_cause(res, log.drop(columns="node"))


# --------------------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors(rng):
    df = system(rng)
    with pytest.raises(UsageError, match="outside the data.*runs from 0 to 249"):
        rank(df, anomaly_start=400)
    with pytest.raises(UsageError, match="outside the data"):
        rank(df, anomaly_start=-5)
    with pytest.raises(UsageError, match="cannot be compared"):
        rank(df, anomaly_start="yesterday")
    with pytest.raises(UsageError, match="only 3 normal rows"):
        rank(df, anomaly_start=3)
    with pytest.raises(UsageError, match="target 'checkout_lat' is not a column.*web_lat"):
        rank(df, target="checkout_lat")
    with pytest.raises(UsageError, match="baseline has no column db_lat"):
        rank(df, baseline=df.drop(columns="db_lat"))
    with pytest.raises(UsageError, match="candidates names nodes without metrics: cache"):
        rank(df, candidates=["cache"])
    with pytest.raises(UsageError, match="target's node 'web' is not in the graph"):
        rank(df, graph={"api": ["db"]})
    with pytest.raises(UsageError, match="non-numeric columns host"):
        rank(df.assign(host="a"))
    with pytest.raises(UsageError, match="must be a pandas DataFrame"):
        rank(df.to_numpy())
    with pytest.raises(UsageError, match="is empty"):
        rank(df.iloc[:0])
    with pytest.raises(UsageError, match="graph must be a mapping"):
        rank(df, graph=42)
    with pytest.raises(UsageError, match="weights .* must be finite"):
        rank(df, graph={"web": {"api": -1.0}})
    with pytest.raises(UsageError, match="direction must be"):
        rank(df, direction=2)
    with pytest.raises(UsageError, match="node_of has no node for columns"):
        rank(df, node_of={"web_lat": "web"})
    with pytest.raises(UsageError, match="threshold must be > 0"):
        GraphRCAConfig(threshold=0)
    with pytest.raises(UsageError, match="quiet_level must be"):
        GraphRCAConfig(quiet_level="mean")
