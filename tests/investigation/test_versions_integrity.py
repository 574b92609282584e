"""A saved version cannot change unnoticed: every file is checked against the hash
recorded at save, the index against the audit log, and a crash's traces are told
apart from tampering (``verify_library``, ``workbench investigations verify``).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from workbench import cli_investigations
from workbench.errors import UsageError
from workbench.governance import read_audit, verify_audit
from workbench.governance.audit import AuditLog
from workbench.investigation import library as V
from workbench.investigation.library import integrity
from workbench.investigation.run import reopen


def run(capsys, *argv) -> tuple[int, str]:
    p = argparse.ArgumentParser(prog="workbench")
    cli_investigations.register(p.add_subparsers(dest="command"))
    a = p.parse_args([str(x) for x in argv])
    code = a.handler(a)
    return code, capsys.readouterr().out


@pytest.fixture
def two_versions(ios_inv, tmp_path, monkeypatch):
    """A library ``investigations`` in the working directory, one investigation, v1 and v2."""
    monkeypatch.chdir(tmp_path)
    lib = Path("investigations")
    a = V.save_investigation(ios_inv, message="first", author="ana", root=lib)
    b = V.save_investigation(ios_inv, message="second", author="ana", root=lib)
    return lib, a, b


def edit_one_character(path: Path) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # versions are read-only
    text = path.read_text(encoding="utf-8")
    i = text.index("chg-1")
    path.write_text(text[:i] + "chg-7" + text[i + 5:], encoding="utf-8")


def test_clean_library_verifies(two_versions, capsys):
    lib, a, b = two_versions
    rep = V.verify_library(lib)
    assert rep.ok and not rep.problems and not rep.warnings
    assert (rep.investigations, rep.versions, rep.files, rep.audit_records) == (1, 2, 6, 2)
    assert rep.summary().startswith("library investigations: OK, 1 investigations, 2 versions")
    for info in (a, b):  # all three files are hashed at save
        for path, h in zip((info.path, info.text_path, info.answer_path),
                           (info.content_hash, info.text_hash, info.answer_hash)):
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == h
    code, out = run(capsys, "investigations", "verify", "--root", lib)
    assert code == 0 and out.splitlines() == [rep.summary()]
    code, out = run(capsys, "investigations", "verify", "--root", lib, "--json")
    assert code == 0 and json.loads(out)["ok"] is True


@pytest.mark.parametrize("suffix", [".ipynb", ".py", ".answer.json"])
def test_a_hand_edited_version_file_is_detected(two_versions, capsys, suffix):
    lib, a, b = two_versions
    path = lib / b.investigation_id / f"v0002{suffix}"
    edit_one_character(path)
    expected = (f"investigations/{b.investigation_id}/v0002{suffix}: content hash differs from "
                f"the one recorded when {b.version_id} was saved (edited after saving?)")
    rep = V.verify_library(lib)
    assert not rep.ok and rep.problems == (expected,)
    code, out = run(capsys, "investigations", "verify", "--root", lib)
    assert code == 1
    assert out.splitlines() == [expected, "library investigations: 1 problem (1 investigations, "
                                          "2 versions, 6 files, 2 audit records)"]
    # reading the tampered version refuses with the same line; v1 is still fine
    for read in (lambda: V.show_version(lib, b.version_id),
                 lambda: V.diff_versions(lib, b.version_id),
                 lambda: reopen(lib, b.version_id)):
        with pytest.raises(V.LibraryError) as err:
            read()
        assert str(err.value) == expected
    with pytest.raises(V.LibraryError, match="content hash differs"):
        run(capsys, "investigations", "show", b.investigation_id, "--root", lib)
    assert V.show_version(lib, a.version_id).info == a
    # ...unless asked to show it anyway, to see what the edit changed
    code, out = run(capsys, "investigations", "show", b.version_id, "--root", lib, "--no-verify")
    assert code == 0 and b.version_id in out


def test_a_deleted_version_file_is_detected(two_versions, capsys):
    lib, a, b = two_versions
    (lib / a.investigation_id / "v0001.answer.json").unlink()
    expected = (f"investigations/{a.investigation_id}/v0001.answer.json: missing (deleted after "
                f"{a.version_id} was saved?)")
    rep = V.verify_library(lib)
    assert not rep.ok and rep.problems == (expected,)
    code, out = run(capsys, "investigations", "verify", "--root", lib)
    assert code == 1 and out.splitlines()[0] == expected
    with pytest.raises(V.LibraryError, match="missing"):
        V.show_version(lib, a.version_id)


def test_a_hand_edited_index_disagrees_with_the_audit_log(two_versions):
    lib, a, b = two_versions
    index = lib / a.investigation_id / "versions.jsonl"
    lines = index.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["message"] = "nothing to see"
    index.write_text("\n".join([lines[0], json.dumps(rec, sort_keys=True)]) + "\n")
    rep = V.verify_library(lib)
    assert rep.problems == (f"investigations/{a.investigation_id}/versions.jsonl: message of "
                            f"{b.version_id} differ from audit record #2 of its save (the line "
                            "was edited by hand?)",)
    # a removed last line: the audit log still records the save
    index.write_text(lines[0] + "\n")
    rep = V.verify_library(lib)
    assert any(f"no line for {b.version_id}" in p for p in rep.problems)
    # a removed first line: the chain of parents breaks
    index.write_text(lines[1] + "\n")
    rep = V.verify_library(lib)
    assert any(f"its parent is {a.version_id} but the line before is none" in p
               for p in rep.problems)


def test_an_edited_file_with_its_hash_edited_in_the_index_too(two_versions):
    lib, a, b = two_versions
    folder = lib / b.investigation_id
    edit_one_character(folder / "v0002.ipynb")
    index = folder / "versions.jsonl"
    lines = index.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["content_hash"] = hashlib.sha256((folder / "v0002.ipynb").read_bytes()).hexdigest()
    index.write_text("\n".join([lines[0], json.dumps(rec, sort_keys=True)]) + "\n")
    rep = V.verify_library(lib)
    assert not rep.ok
    assert rep.problems == (f"investigations/{b.investigation_id}/versions.jsonl: content_hash "
                            f"of {b.version_id} differ from audit record #2 of its save (the "
                            "line was edited by hand?)",)


def test_versions_saved_before_twin_hashes_check_twins_against_the_notebook(two_versions):
    lib, a, b = two_versions
    folder = lib / a.investigation_id
    legacy = dataclasses.replace(a, text_hash=None, answer_hash=None)
    assert integrity._file_problems(folder, legacy) == []
    edit_one_character(folder / "v0001.py")
    (problem,) = integrity._file_problems(folder, legacy)
    assert problem.startswith(f"investigations/{a.investigation_id}/v0001.py: content hash "
                              "differs")


def test_a_missing_library_is_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="nowhere: no investigations library there"):
        V.verify_library(tmp_path / "nowhere")


def test_a_line_cut_short_by_a_crash_is_ignored_then_repaired(two_versions, ios_inv):
    lib, a, b = two_versions
    index = lib / a.investigation_id / "versions.jsonl"
    whole = index.read_bytes()
    index.write_bytes(whole + b'{"answer_hash": "3f2a')  # a write cut short: no newline
    with pytest.warns(V.LibraryWarning, match=r"versions.jsonl, line 3: an incomplete last line"):
        assert [v.version for v in V.list_versions(lib, a.investigation_id)] == [1, 2]
    rep = V.verify_library(lib)
    assert rep.ok and any("an incomplete last line" in w for w in rep.warnings)
    with pytest.warns(V.LibraryWarning) as caught:
        c = V.save_investigation(ios_inv, message="third", root=lib)
    # read (and ignored) while finding the investigation, then removed under its lock
    assert str(caught[-1].message) == (f"{index}: removed an incomplete last line of 21 bytes "
                                       "left by an interrupted write")
    assert c.version == 3 and index.read_bytes().startswith(whole)
    rep = V.verify_library(lib)
    assert rep.ok and not rep.warnings


def test_a_save_interrupted_after_its_commit_is_audited_by_the_next(two_versions, ios_inv,
                                                                     monkeypatch):
    lib, a, b = two_versions

    def crash(*_a, **_k):
        raise SystemExit("killed")  # stands for a kill between the index line and the audit

    with monkeypatch.context() as m:
        m.setattr(AuditLog, "append", crash)
        with pytest.raises(SystemExit):
            V.save_investigation(ios_inv, message="third", author="bo", root=lib)
    folder = lib / a.investigation_id
    assert (folder / V.PENDING_AUDIT).is_file()
    c = V.resolve_version(lib, a.investigation_id)
    assert c.version == 3
    rep = V.verify_library(lib)
    assert rep.ok and rep.warnings == (
        f"investigations/{a.investigation_id}/versions.jsonl: {c.version_id} was saved but its "
        f"audit record not yet written (the save was interrupted); the next save of "
        f"{a.investigation_id} writes it",)
    d = V.save_investigation(ios_inv, message="fourth", author="bo", root=lib)
    assert d.version == 4 and not (folder / V.PENDING_AUDIT).exists()
    saved = read_audit(lib / "audit.jsonl", action="artifact.saved")
    assert [(r.details["version"], r.details.get("recovered")) for r in saved] == [
        (a.version_id, None), (b.version_id, None), (c.version_id, True), (d.version_id, None)]
    assert verify_audit(lib / "audit.jsonl").ok
    rep = V.verify_library(lib)
    assert rep.ok and not rep.warnings


def test_a_pending_marker_does_not_excuse_an_unaudited_older_version(two_versions, monkeypatch,
                                                                    tmp_path_factory):
    lib, a, b = two_versions
    # checked where the default audit anchor never saw this library (another account),
    # which would otherwise report the cut log first
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("other-account")))
    (lib / a.investigation_id / V.PENDING_AUDIT).write_text(json.dumps(
        {"version_id": a.version_id}))
    log = lib / "audit.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # drop the record of v2...
    (lib / "audit.jsonl.head").write_text(json.dumps(
        {"seq": 1, "hash": read_audit(log)[0].hash}))   # ...and cover the tracks in the head
    rep = V.verify_library(lib)
    assert rep.problems == (f"investigations/{a.investigation_id}/versions.jsonl: "
                            f"{b.version_id} has no artifact.saved record in the audit log (the "
                            "line was added by hand?)",)


def test_leftovers_of_an_interrupted_save_are_warnings_and_cleaned(two_versions, ios_inv):
    lib, a, b = two_versions
    folder = lib / a.investigation_id
    (folder / ".v0003.ipynb.tmp-4242").write_text('{"cells": [')
    (folder / "v0003.answer.json").write_text("{}")
    rep = V.verify_library(lib)
    assert rep.ok and sorted(rep.warnings) == [
        f"investigations/{a.investigation_id}/.v0003.ipynb.tmp-4242: a temporary file of an "
        "interrupted save; the next save removes it",
        f"investigations/{a.investigation_id}/v0003.answer.json: not part of any saved version "
        "(left by an interrupted save?); ignored"]
    c = V.save_investigation(ios_inv, message="next", root=lib)
    assert c.version == 4  # v0003 is taken by a leftover, which is kept
    assert not list(folder.glob(".v*.tmp-*"))
    assert (folder / "v0003.answer.json").read_text() == "{}"
    assert V.verify_library(lib).ok
