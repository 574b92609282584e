"""Saving investigations as immutable versions; list, show, diff, reopen, decisions, stats."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import workbench as wb
from workbench.errors import UsageError
from workbench.governance import read_audit, verify_audit
from workbench.investigation import library as V
from workbench.investigation.run import reopen


def test_save_writes_an_immutable_version(ios_inv, library):
    info = V.save_investigation(ios_inv, message="first look", author="ana", root=library)
    assert info.version == 1 and info.parent is None and info.author == "ana"
    assert info.version_id == f"{info.investigation_id}@v0001"
    assert info.top_cause == "chg-1" and info.verdict == "change"
    folder = library / info.investigation_id
    for p in (info.path, info.text_path, info.answer_path):
        assert Path(p).parent == folder
        assert not os.stat(p).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    import hashlib

    assert hashlib.sha256(Path(info.path).read_bytes()).hexdigest() == info.content_hash
    # the object now knows where it lives
    assert ios_inv.investigation_id == info.investigation_id and ios_inv.version == 1
    assert ios_inv.artifact == info.path
    answer = json.loads(Path(info.answer_path).read_text())
    assert answer["causes"][0]["change_id"] == "chg-1"
    assert "timings" not in answer and all("loaded_at" not in p for p in answer["provenance"])
    assert {p["table"] for p in answer["provenance"]} >= {"events", "changes"}
    assert answer["queries"]["metric_series"].lstrip().upper().startswith(("SELECT", "WITH"))


def test_second_save_is_a_new_version_with_parent(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", author="ana", root=library)
    b = V.save_investigation(ios_inv, message="second", author="bo", root=library)
    assert (b.investigation_id, b.version, b.parent) == (a.investigation_id, 2, a.version_id)
    assert Path(a.path).read_bytes() != Path(b.path).read_bytes()  # version number inside
    vs = V.list_versions(library, a.investigation_id)
    assert [v.message for v in vs] == ["first", "second"]


def test_save_never_overwrites_an_existing_file(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", root=library)
    # a stray v0002 (a crash after writing files, before committing the line)
    stray = Path(a.path).with_name("v0002.ipynb")
    stray.write_text("{}")
    b = V.save_investigation(ios_inv, message="second", root=library)
    assert b.version == 3 and stray.read_text() == "{}"
    rep = V.verify_library(library)  # not tampering: a trace of a crash, named
    assert rep.ok and rep.warnings == (f"{stray}: not part of any saved version (left by an "
                                       "interrupted save?); ignored",)


def test_rerun_of_the_same_incident_adds_a_version(ios_passport, library):
    one = wb.investigate(ios_passport, metric="sessions", artifact_dir=library)
    two = wb.investigate(ios_passport, metric="sessions", artifact_dir=library)
    assert one.investigation_id == two.investigation_id
    assert Path(two.artifact).name == "v0002.ipynb"
    vs = V.list_versions(library, one.investigation_id)
    assert vs[0].message.startswith("investigate: first run; top cause chg-1")
    assert vs[1].message.startswith("investigate: re-run")
    # ... unless a new investigation is asked for
    three = V.save_investigation(two, root=library, new=True, message="fresh start")
    assert three.investigation_id != one.investigation_id and three.version == 1


def test_refs(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", root=library)
    b = V.save_investigation(ios_inv, message="second", root=library)
    iid = a.investigation_id
    assert V.resolve_version(library, iid) == b
    assert V.resolve_version(library, f"{iid}@1") == a
    assert V.resolve_version(library, f"{iid}@v0001") == a
    assert V.resolve_version(library, f"{iid}@first") == a
    assert V.resolve_version(library, b.content_hash[:10]) == b
    assert V.resolve_version(library, iid[:-2]) == b  # unique prefix
    with pytest.raises(UsageError, match="has no version 7; versions are v0001, v0002"):
        V.resolve_version(library, f"{iid}@7")
    with pytest.raises(UsageError, match=f"no investigation 'inv-nope' .* recent ones: {iid}"):
        V.resolve_version(library, "inv-nope")


def test_show_and_list(ios_inv, library):
    info = V.save_investigation(ios_inv, message="first look", author="ana", root=library)
    d = V.show_version(library, info.investigation_id)
    text = d.summary()
    assert "Verdict: CHANGE" in text and "#1 chg-1" in text and "first look" in text
    (entry,) = V.list_investigations(library)
    assert entry.versions == 1 and entry.status == "open" and entry.metric == "sessions"
    assert entry.investigation_id in entry.line()


def test_decisions_notes_actions_are_journaled_audited_and_carried(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", author="ana", root=library)
    iid = a.investigation_id
    V.record_decision(library, iid, hypothesis="chg-2", status="refuted",
                      note="global deploy; the drop is iOS only", author="ana")
    V.record_decision(library, iid, hypothesis="chg-1", status="confirmed",
                      note="new flow breaks the session start on iOS", author="ana")
    V.add_note(library, iid, "paged the checkout team", author="bo")
    V.record_action(library, iid, action="revert", target="chg-1", author="bo")
    b = V.save_investigation(ios_inv, message="new_flow on iOS broke sessions", author="ana",
                             root=library)
    answer = V.show_version(library, b.version_id).answer
    assert [(d["hypothesis"], d["status"]) for d in answer["decisions"]] == [
        ("chg-2", "refuted"), ("chg-1", "confirmed")]
    assert answer["actions"][0]["action"] == "revert"
    (entry,) = V.list_investigations(library)
    assert entry.status == "resolved" and entry.resolution == "revert chg-1"
    actions = [r.action for r in read_audit(library / "audit.jsonl", subject=iid)]
    assert actions == ["artifact.saved", "hypothesis.refuted", "hypothesis.confirmed",
                       "note.added", "action.launched", "artifact.saved"]
    assert verify_audit(library / "audit.jsonl").ok
    nb = json.loads(Path(b.path).read_text())
    decisions = next(c for c in nb["cells"] if "decisions" in c["metadata"].get("tags", []))
    assert "chg-1 **confirmed**" in decisions["source"]


def test_decision_errors_are_one_clear_line(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", root=library)
    with pytest.raises(UsageError, match="status 'maybe': expected one of confirmed, refuted"):
        V.record_decision(library, a.investigation_id, hypothesis="chg-1", status="maybe")
    with pytest.raises(UsageError, match=r"'chg-404' is not a hypothesis of .*; hypotheses "
                                         r"are: chg-1, .*external"):
        V.record_decision(library, a.investigation_id, hypothesis="chg-404", status="confirmed")
    with pytest.raises(UsageError, match="a note needs some text"):
        V.add_note(library, a.investigation_id, "  ")
    V.record_decision(library, a.investigation_id, hypothesis="external", status="refuted")


def test_readable_diff(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", author="ana", root=library)
    V.record_decision(library, a.investigation_id, hypothesis="chg-1", status="confirmed",
                      note="flag broke iOS", author="ana")
    b = V.save_investigation(ios_inv, message="confirmed", author="ana", root=library)
    d = V.diff_versions(library, a.version_id, b.version_id)
    assert d.splitlines()[0] == f"{a.version_id} -> {b.version_id}"
    assert 'Decisions:\n  + chg-1 confirmed by ana: "flag broke iOS"' in d
    assert "{" not in d  # readable lines, not JSON
    # with one argument: against the parent
    assert V.diff_versions(library, b.version_id) == d
    same = V.diff_versions(library, a.version_id, a.version_id)
    assert same.endswith("No change in the answer.")
    with pytest.raises(UsageError, match="is the first version"):
        V.diff_versions(library, a.version_id)
    text = V.diff_versions(library, a.version_id, b.version_id, text=True)
    assert "--- v0001.py" in text and "+++ v0002.py" in text
    assert "+version = 2" in text and "+# | chg-1 | confirmed | " not in text
    assert "+# | " in text and "chg-1 **confirmed**: flag broke iOS" in text


def test_diff_of_changed_answers_names_ranks_confidence_and_evidence():
    base = {"verdict": "change", "metric": "m", "passport": "p",
            "divergence": {"onset": "2026-11-18T14:00:00Z", "relative_change": -0.10},
            "slices": [{"filter": {"platform": "ios"}, "explained_share": 0.9}],
            "causes": [{"change_id": "c1", "kind": "flag", "target": "f", "confidence": 0.8,
                        "evidence": ["onset within 1 grain of the change"]},
                       {"change_id": "c2", "kind": "deploy", "target": "api",
                        "confidence": 0.1, "evidence": []}],
            "provenance": [{"path": "events.csv", "sha256": "a" * 64}]}
    new = json.loads(json.dumps(base))
    new["verdict"] = "external"
    new["divergence"]["relative_change"] = -0.12
    new["causes"] = [new["causes"][1], new["causes"][0]]
    new["causes"][1]["confidence"] = 0.3
    new["causes"][1]["evidence"].append("difference-in-differences -5%")
    new["provenance"][0]["sha256"] = "b" * 64
    lines = "\n".join(V.diff_answers(base, new))
    assert "Verdict: change -> external" in lines
    assert "relative_change -10.00% -> -12.00%" in lines
    assert "events.csv: sha256 aaaaaaaaaaaa -> bbbbbbbbbbbb" in lines
    assert "~ #2 c1 flag f: rank #1 -> #2, confidence 80% -> 30%" in lines
    assert "+ difference-in-differences -5%" in lines
    assert "~ #1 c2 deploy api: rank #2 -> #1" in lines


def test_reopen_reruns_and_saves_the_next_version(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", root=library)
    inv = reopen(library, a.version_id)
    assert inv.investigation_id == a.investigation_id and inv.based_on == a.version_id
    assert [c["change_id"] for c in inv.causes] == [c["change_id"] for c in ios_inv.causes]
    b = V.save_investigation(inv, message="reopened", root=library)
    assert b.version == 2 and b.parent == a.version_id and b.based_on == a.version_id
    assert V.diff_versions(library, b.version_id).endswith("No change in the answer.")


def test_stats_time_to_diagnose(ios_inv, library):
    a = V.save_investigation(ios_inv, message="first", root=library)
    rep = V.investigation_stats(library)
    (row,) = rep.rows
    assert row.loaded_at and row.top_cause_shown_at and row.decided_at is None
    assert 0 <= row.seconds_to_cause < 600
    V.record_decision(library, a.investigation_id, hypothesis="chg-1", status="confirmed")
    rep = V.investigation_stats(library)
    (row,) = rep.rows
    assert row.seconds_to_decision >= row.seconds_to_cause
    assert rep.median_seconds_to_decision == row.seconds_to_decision
    assert "1 investigations, 1 with a decision" in rep.summary()
    assert list(rep.to_frame().columns)[:2] == ["investigation_id", "metric"]


def test_shown_clock_from_the_object(ios_inv, library):
    V.note_shown(ios_inv, at="2030-01-01T00:00:00.000000Z")
    V.save_investigation(ios_inv, message="first", root=library)
    (row,) = V.investigation_stats(library).rows
    assert row.top_cause_shown_at == "2030-01-01T00:00:00.000000Z"


def test_decide_on_an_object_saves_it_first(ios_inv, library):
    e = V.decide(ios_inv, "chg-1", "confirmed", note="yes", root=library, author="ana")
    assert e.investigation_id == ios_inv.investigation_id
    assert ios_inv.decisions[-1]["hypothesis"] == "chg-1"
    assert V.list_versions(library, e.investigation_id)[0].message == \
        "saved before recording a decision"


def test_library_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_INVESTIGATIONS", str(tmp_path / "lib"))
    assert V.library_root() == tmp_path / "lib"
    assert V.library_root("x") == Path("x")


def test_concurrent_runs_of_one_incident_make_one_investigation(ios_passport, tmp_path):
    import subprocess
    import sys

    lib = tmp_path / "lib"
    code = ("import sys, warnings\n"
            "import pandas as pd\n"
            # the detector's pandas deprecation is not what this test is about
            "warnings.simplefilter('ignore', pd.errors.Pandas4Warning)\n"
            "import workbench as wb\n"
            "wb.investigate(sys.argv[1], metric='sessions', db=sys.argv[2], "
            "artifact_dir=sys.argv[3])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ios_passport),
                               str(tmp_path / f"db{k}.duckdb"), str(lib)],
                              stderr=subprocess.PIPE, text=True) for k in range(3)]
    for pr in procs:
        _, err = pr.communicate(timeout=120)
        assert pr.returncode == 0, err
    (entry,) = V.list_investigations(lib)
    vs = V.list_versions(lib, entry.investigation_id)
    assert [v.version for v in vs] == [1, 2, 3]
    assert [v.parent for v in vs] == [None, vs[0].version_id, vs[1].version_id]
    rep = verify_audit(lib / "audit.jsonl")
    assert rep.ok and rep.records == 3
