"""The audit log: append-only, hash-chained; any single edit, deletion or swap is found.

The property tests build a real log with ``AuditLog.append``, tamper with the
file the way a person with a text editor would (edit one field, with or
without recomputing that record's hash; delete one line; swap two lines;
insert a copy), and require :func:`verify_audit` to fail at the right line.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.governance import (GENESIS, AuditLog, append_audit, read_audit, record_hash,
                                  verify_audit)
from workbench.governance.audit import AuditError, AuditWarning, canonical_json

ACTIONS = ["artifact.saved", "hypothesis.confirmed", "hypothesis.refuted", "note.added",
           "action.launched"]


def make_log(path: Path, n: int) -> list[dict]:
    log = AuditLog(path)
    for i in range(n):
        log.append(ACTIONS[i % len(ACTIONS)], actor=["ana", "bo"][i % 2], subject=f"inv-{i % 3}",
                   details={"i": i, "note": f"record {i}"}, ts=f"2026-11-18T14:{i:02d}:00Z")
    return [json.loads(x) for x in path.read_text().splitlines()]


def write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(canonical_json(r) + "\n" for r in records))


def test_append_builds_a_chain(tmp_path):
    recs = make_log(tmp_path / "a.jsonl", 4)
    assert [r["seq"] for r in recs] == [1, 2, 3, 4]
    assert recs[0]["prev_hash"] == GENESIS
    for a, b in zip(recs, recs[1:]):
        assert b["prev_hash"] == a["hash"]
    assert all(record_hash(r) == r["hash"] for r in recs)
    rep = verify_audit(tmp_path / "a.jsonl")
    assert rep.ok and rep.records == 4 and rep.head_hash == recs[-1]["hash"]
    assert "OK, 4 records" in rep.summary()


def test_empty_or_missing_log_verifies(tmp_path):
    rep = verify_audit(tmp_path / "none.jsonl")
    assert rep.ok and rep.records == 0


def test_read_filters(tmp_path):
    p = tmp_path / "a.jsonl"
    make_log(p, 6)
    assert len(read_audit(p)) == 6
    assert {r.actor for r in read_audit(p, actor="ana")} == {"ana"}
    assert [r.seq for r in read_audit(p, subject="inv-0")] == [1, 4]
    assert all(r.action.startswith("hypothesis.") for r in read_audit(p, action="hypothesis."))
    assert "hypothesis.confirmed" in read_audit(p)[1].line()


def test_edited_record_is_located(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 5)
    recs[2]["actor"] = "mallory"
    write_lines(p, recs)
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 3
    assert "does not match its hash" in rep.reason
    assert "TAMPERED at line 3" in rep.summary()


def test_edited_and_rehashed_record_breaks_the_next_link(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 5)
    recs[1]["details"] = {"i": 1, "note": "nothing to see"}
    recs[1]["hash"] = record_hash(recs[1])
    write_lines(p, recs)
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 3 and "prev_hash" in rep.reason


def test_deleted_record_is_located(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 5)
    write_lines(p, recs[:2] + recs[3:])
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 3
    assert "holds record #4, expected #3" in rep.reason


def test_deleted_last_records_are_caught_by_the_head_anchor(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 5)
    write_lines(p, recs[:3])
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 4 and "deleted" in rep.reason


def test_reordered_records_are_located(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 5)
    recs[1], recs[3] = recs[3], recs[1]
    write_lines(p, recs)
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 2 and "reordered" in rep.reason


def test_rewritten_history_needs_the_head_or_an_expected_head(tmp_path, monkeypatch,
                                                              tmp_path_factory):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 4)
    witnessed = verify_audit(p).head_hash
    # Rewrite the chain from record 2 on, consistently: the head anchor knows.
    recs[1]["actor"] = "mallory"
    for i in range(1, 4):
        recs[i]["prev_hash"] = recs[i - 1]["hash"]
        recs[i]["hash"] = record_hash(recs[i])
    write_lines(p, recs)
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 4 and "head anchor" in rep.reason
    # ...with the head rewritten too, the default anchor outside the folder knows
    (tmp_path / "a.jsonl.head").write_text(json.dumps({"seq": 4, "hash": recs[-1]["hash"]}))
    rep = verify_audit(p)
    assert not rep.ok and "anchor file" in rep.reason and "rewritten" in rep.reason
    # ...and where that anchor never saw the log (another account), a head hash kept
    # elsewhere still catches it
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("other-account")))
    assert verify_audit(p).ok and not verify_audit(p).signed
    rep = verify_audit(p, expected_head=witnessed)
    assert not rep.ok and "rewritten" in rep.reason


def test_missing_head_with_records_is_reported(tmp_path):
    p = tmp_path / "a.jsonl"
    make_log(p, 2)
    (tmp_path / "a.jsonl.head").unlink()
    rep = verify_audit(p)
    assert not rep.ok and "head anchor" in rep.reason


def test_garbage_and_blank_lines(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 3)
    text = p.read_text().splitlines()
    p.write_text(text[0] + "\n" + "not json\n" + text[2] + "\n")
    rep = verify_audit(p)
    assert rep.first_bad_line == 2 and "not valid JSON" in rep.reason
    p.write_text(text[0] + "\n\n" + text[2] + "\n")
    assert "empty" in verify_audit(p).reason
    with pytest.raises(AuditError, match="line 2: not an audit record"):
        read_audit(p)
    assert len(recs) == 3


def test_bad_details_are_a_clear_error(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(WorkbenchError, match="not plain JSON"):
        log.append("note.added", details={"x": object()})
    with pytest.raises(WorkbenchError, match="needs an action"):
        log.append("")


def test_appends_continue_the_chain_across_instances(tmp_path):
    p = tmp_path / "a.jsonl"
    append_audit(p, "note.added", actor="ana")
    rec = AuditLog(p).append("note.added", actor="bo")
    assert rec.seq == 2 and verify_audit(p).ok


def test_concurrent_writers_keep_one_chain(tmp_path):
    p = tmp_path / "a.jsonl"
    code = ("import sys\nfrom workbench.governance import append_audit\n"
            "for i in range(15):\n"
            "    append_audit(sys.argv[1], 'note.added', actor=sys.argv[2], details={'i': i})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), f"w{k}"]) for k in range(4)]
    assert all(pr.wait(timeout=60) == 0 for pr in procs)
    rep = verify_audit(p)
    assert rep.ok and rep.records == 60


# --------------------------------------------------------------------------- properties
FIELDS = ["seq", "ts", "actor", "action", "subject", "details", "prev_hash", "hash"]


def _changed(value, draw_text: str):
    if isinstance(value, int):
        return value + 1 + len(draw_text)
    if isinstance(value, dict):
        return {**value, "tampered": draw_text}
    return value + "x" + draw_text if value else "x" + draw_text


mutations = st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 99), st.sampled_from(FIELDS), st.text(max_size=5),
              st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 99)),
    st.tuples(st.just("swap"), st.integers(0, 99), st.integers(1, 99)),
    st.tuples(st.just("duplicate"), st.integers(0, 99), st.integers(0, 99)),
)


# Each example writes a small log in its own temporary folder (tmp_path would be
# shared between examples), and fsyncs: allow slower examples.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 8), mutation=mutations)
def test_any_single_tampering_is_detected_where_it_happened(n, mutation):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "audit.jsonl"
        recs = make_log(p, n)
        assert verify_audit(p).ok
        op = mutation[0]
        if op == "edit":
            _, i, fld, txt, rehash = mutation
            i %= n
            recs[i][fld] = _changed(recs[i][fld], txt)
            if rehash and fld != "hash":
                recs[i]["hash"] = record_hash(recs[i])
            # an edited record fails itself; a rehashed one fails the next link
            # (or, the last one, the head anchor)
            expect = i + 1 if not rehash or fld == "hash" else min(i + 2, n)
            if rehash and fld in ("seq", "prev_hash"):
                expect = i + 1  # its own position or link is wrong
        elif op == "delete":
            i = mutation[1] % n
            del recs[i]
            expect = i + 1
        elif op == "swap":
            if n < 2:
                return
            i = mutation[1] % n
            j = (i + mutation[2]) % n
            if i == j:
                j = (i + 1) % n
            i, j = min(i, j), max(i, j)
            recs[i], recs[j] = recs[j], recs[i]
            expect = i + 1
        else:
            i, j = mutation[1] % n, mutation[2] % (n + 1)
            recs.insert(j, dict(recs[i]))
            # a copy right before its original sits at its own place: the original fails
            expect = i + 2 if j == i else j + 1
        write_lines(p, recs)
        rep = verify_audit(p)
        assert not rep.ok, (mutation, rep)
        assert rep.first_bad_line == expect, (mutation, rep)
        assert rep.reason


# --------------------------------------------------------------------------- crashes
def test_a_record_cut_short_by_a_crash_is_a_warning_and_the_next_append_removes_it(tmp_path):
    p = tmp_path / "a.jsonl"
    recs = make_log(p, 3)
    whole = p.read_bytes()
    # an append killed mid-write: part of record 4, no newline, the head still at 3
    p.write_bytes(whole + canonical_json({**recs[2], "seq": 4}).encode()[:40])
    rep = verify_audit(p)
    assert rep.ok and rep.records == 3 and rep.head_hash == recs[2]["hash"]
    assert rep.warnings == ("line 4 is an incomplete record left by an interrupted append; "
                            "the next append removes it",)
    assert "warning: line 4 is an incomplete record" in rep.summary()
    assert [r.seq for r in read_audit(p)] == [1, 2, 3]
    with pytest.warns(AuditWarning, match="removed an incomplete last record of 40 bytes"):
        rec = AuditLog(p).append("note.added", actor="ana")
    assert rec.seq == 4 and rec.prev_hash == recs[2]["hash"]
    assert p.read_bytes().startswith(whole)
    rep = verify_audit(p)
    assert rep.ok and rep.records == 4 and not rep.warnings


def test_a_record_the_head_vouches_for_cut_short_is_tampering(tmp_path):
    p = tmp_path / "a.jsonl"
    make_log(p, 3)
    data = p.read_bytes()
    p.write_bytes(data[:-30])  # the last record, which the head anchor names, cut short
    rep = verify_audit(p)
    assert not rep.ok and rep.first_bad_line == 3
    assert "head anchor says record 3 was written whole" in rep.reason
    with pytest.raises(AuditError, match="the last record is damaged"):
        AuditLog(p).append("note.added", actor="ana")


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    p = tmp_path / "a.jsonl"
    make_log(p, 2)
    p.write_bytes(p.read_bytes().rstrip(b"\n"))
    assert verify_audit(p).ok
    AuditLog(p).append("note.added", actor="ana")
    rep = verify_audit(p)
    assert rep.ok and rep.records == 3
