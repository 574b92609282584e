"""Memory: search past investigations, suggest similar ones, learn priors from resolutions."""
from __future__ import annotations

import pytest

from workbench.errors import UsageError
from workbench.investigation import library as V
from workbench.investigation.library import memory as M
from workbench.textsearch import tokenize


@pytest.fixture
def resolved_ios(ios_inv, library):
    """The iOS incident, saved, resolved (chg-1 confirmed, chg-2 refuted, reverted)."""
    info = V.save_investigation(ios_inv, message="new_flow broke iOS session start",
                                author="ana", root=library)
    iid = info.investigation_id
    V.record_decision(library, iid, hypothesis="chg-2", status="refuted",
                      note="api deploy is global; the drop is iOS only", author="ana")
    V.record_decision(library, iid, hypothesis="chg-1", status="confirmed",
                      note="payment sheet never opens", author="ana")
    V.record_action(library, iid, action="revert", target="chg-1", author="bo")
    return iid


def test_memory_indexes_with_the_one_tokenizer():
    """Identifiers and their parts, stop words left out: the same tokens as the context
    index (workbench.textsearch), so a word found by one search is found by the other."""
    assert tokenize("Flag new_checkout_flow on iOS 5.2", stop=True) == [
        "flag", "new_checkout_flow", "new", "checkout", "flow", "ios", "5.2", "5", "2"]
    rec = {"metric": "conversion_rate", "text": "Flag new_checkout_flow on iOS 5.2",
           "causes": [{"kind": "flag", "target": "PromoCodeValidator", "change_id": "chg-1"}]}
    fields = M.record_tokens(rec)
    assert fields["text"] == tokenize(rec["text"], stop=True) and "on" not in fields["text"]
    assert {"promo", "code", "validator"} <= set(fields["target"])


def test_search_by_slice_target_kind_metric_and_text(resolved_ios, library):
    mdb = M.memory_path(library)
    assert [h.investigation_id for h in M.search_investigations(mdb, slice="platform=ios")] == \
        [resolved_ios]
    assert len(M.search_investigations(mdb, slice={"platform": "android"})) == 0
    assert [h.investigation_id for h in M.search_investigations(mdb, target="new_flow")] == \
        [resolved_ios]
    assert len(M.search_investigations(mdb, target="flow")) == 1  # a word of the target
    assert len(M.search_investigations(mdb, kind="flag", metric="sessions")) == 1
    assert len(M.search_investigations(mdb, metric="conversion_rate")) == 0
    hits = M.search_investigations(mdb, "payment sheet")
    assert hits.hits[0].investigation_id == resolved_ios
    assert set(hits.hits[0].matched) == {"payment", "sheet"}
    assert hits.hits[0].status == "resolved" and hits.hits[0].resolution == "revert chg-1"
    assert len(M.search_investigations(mdb, "kubernetes")) == 0
    assert len(M.search_investigations(mdb, status="resolved")) == 1
    assert len(M.search_investigations(mdb, status="open")) == 0
    assert "resolved: revert chg-1" in hits.summary()
    assert list(hits.to_frame()["investigation_id"]) == [resolved_ios]


def test_search_ranks_by_tf_idf(resolved_ios, android_inv, library):
    other = V.save_investigation(android_inv, message="android sessions drop", root=library)
    mdb = M.memory_path(library)
    hits = M.search_investigations(mdb, "payment android")
    assert len(hits) == 2  # either word matches
    assert {h.investigation_id for h in hits} == {resolved_ios, other.investigation_id}
    # a word only one investigation has outranks the metric both have
    top = M.search_investigations(mdb, "sessions payment").hits[0]
    assert top.investigation_id == resolved_ios


def test_search_errors(library):
    mdb = M.memory_path(library)
    assert len(M.search_investigations(mdb, "anything")) == 0  # no index yet
    with pytest.raises(UsageError, match="expected DIMENSION=VALUE"):
        M.search_investigations(mdb, slice="ios")
    with pytest.raises(UsageError, match="expected open or resolved"):
        M.search_investigations(mdb, status="closed")


def test_similar_resolved_investigation_is_suggested(resolved_ios, android_inv, library):
    info = V.save_investigation(android_inv, message="android drop", root=library)
    (sim,) = android_inv.similar  # attached when saved
    assert sim.investigation_id == resolved_ios
    assert sim.status == "resolved" and sim.resolution == "revert chg-1"
    assert sim.cause["change_id"] == "chg-1" and sim.cause["target"] == "new_flow"
    line = sim.line()
    assert line.startswith(f"similar to {resolved_ios} of 2026-11-15 (sessions drop on "
                           "platform=ios; resolved: revert chg-1)")
    assert "new_flow was the confirmed cause there" in line
    # ... and the saved answer shows it
    answer = V.show_version(library, info.version_id).answer
    assert answer["similar"][0]["investigation_id"] == resolved_ios
    # not similar to itself
    assert M.similar_investigations(M.memory_path(library), android_inv,
                                    exclude=info.investigation_id)[0].investigation_id == \
        resolved_ios


def test_unrelated_investigation_is_not_suggested(resolved_ios, library):
    unrelated = {"metric": "latency_ms", "divergence": {"relative_change": 0.3},
                 "slices": [{"filter": {"country": "BR"}}],
                 "causes": [{"change_id": "x", "kind": "infra", "target": "lb"}]}
    assert M.similar_investigations(M.memory_path(library), unrelated) == ()


def test_prior_evidence_same_target(resolved_ios, android_inv, library):
    mdb = M.memory_path(library)
    top = android_inv.causes[0]
    assert top["change_id"] == "chg-9" and top["target"] == "new_flow"
    boost, ev = M.prior_evidence(mdb, metric="sessions", slices=android_inv.slices,
                                 candidate=top)
    assert boost == 1.0
    assert ev.startswith("prior (past investigations, not this data): flag new_flow was the "
                         "confirmed cause of a sessions drop on platform=ios in " + resolved_ios)
    assert "resolution: revert chg-1" in ev


def test_prior_evidence_pattern_and_refuted(resolved_ios, android_inv, library):
    mdb = M.memory_path(library)
    slices = android_inv.slices
    other_flag = {"id": "chg-77", "kind": "flag", "target": "other_flag",
                  "scope": {"platform": "android"}}
    boost, ev = M.prior_evidence(mdb, metric="sessions", slices=slices, candidate=other_flag)
    assert boost == 0.4
    assert ("flag change scoped to platform -> sessions drop on that platform; "
            "resolution: revert chg-1") in ev
    # scope elsewhere than the divergence: no pattern
    assert M.prior_evidence(mdb, metric="sessions", slices=slices,
                            candidate={**other_flag, "scope": {"platform": "web"}}) == (0.0, None)
    # another metric: nothing learned
    assert M.prior_evidence(mdb, metric="revenue", slices=slices, candidate=other_flag) == \
        (0.0, None)
    # the api deploy was refuted and never confirmed
    boost, ev = M.prior_evidence(mdb, metric="sessions", slices=slices,
                                 candidate={"kind": "deploy", "target": "api", "scope": {}})
    assert boost == -0.25 and "was refuted" in ev and "global" in ev


def test_prior_evidence_ignores_the_same_incident_and_later_decisions(resolved_ios, ios_inv,
                                                                      library):
    mdb = M.memory_path(library)
    top = ios_inv.causes[0]
    kw = dict(metric="sessions", slices=ios_inv.slices, candidate=top)
    assert M.prior_evidence(mdb, **kw)[0] == 1.0
    assert M.prior_evidence(mdb, **kw, passport=ios_inv.passport,
                            onset=ios_inv.divergence["onset"]) == (0.0, None)
    assert M.prior_evidence(mdb, **kw, asof="2000-01-01T00:00:00Z") == (0.0, None)
    assert M.prior_evidence(None, **kw) == (0.0, None)
    assert M.prior_evidence(library / "missing.duckdb", **kw) == (0.0, None)


def test_rebuild_equals_incremental_index(resolved_ios, android_inv, library):
    V.save_investigation(android_inv, message="android drop", root=library)
    mdb = M.memory_path(library)
    before = sorted(M.load_records(mdb), key=lambda r: r["investigation_id"])
    mdb.unlink()
    assert V.rebuild_memory(library) == 2
    after = sorted(M.load_records(mdb), key=lambda r: r["investigation_id"])
    assert before == after


def test_stale_index_is_rebuilt_by_the_next_writer(resolved_ios, android_inv, library):
    (library / M.STALE_MARK).touch()
    M.memory_path(library).unlink()
    V.save_investigation(android_inv, message="android drop", root=library)
    assert not (library / M.STALE_MARK).exists()
    assert len(M.load_records(M.memory_path(library))) == 2
