"""Reproducing a verified investigation reproduces its verification, or says what differs.

The iOS incident (tests/investigation/conftest.py) is investigated once with the
DoWhy verification (chg-1 verified, refuters run) and saved; ``reopen`` and
the notebook executed headless (``investigations reopen --execute``) re-run
the verification because the saved version had one, and a re-run without it
is never called "reproduced": the check names the verification lines it lost.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import pytest

import workbench as wb
from workbench import cli_investigations
from workbench.investigation import library as V
from workbench.investigation.library.notebook import reproduction_check, saved_digest
from workbench.investigation.library.reproduce import _older_check
from workbench.investigation.library.verification import (verification_differences,
                                                          verification_digest)
from workbench.investigation.run import reopen


@pytest.fixture(scope="module")
def verified(ios_passport, tmp_path_factory):
    """(library, saved version, saved answer) of a verified investigation."""
    lib = tmp_path_factory.mktemp("verified") / "investigations"
    inv = wb.investigate(ios_passport, metric="sessions", artifact_dir=None, verify=True)
    info = V.save_investigation(inv, root=lib, message="verified")
    answer = V.show_version(lib, info.version_id).answer
    return lib, info, answer


def _lines(answer: dict) -> list[str]:
    return [x for c in answer["verification"]["causes"] for x in c["evidence"]]


def test_the_saved_answer_is_verified(verified):
    _, info, answer = verified
    digest = saved_digest(answer)["verification"]
    assert [(c["change_id"], c["verdict"]) for c in digest["causes"]][0] == ("chg-1", "verified")
    assert digest["causes"][0]["refuters"]["placebo_treatment"] is True
    assert len(_lines(answer)) >= 3
    nb = json.loads(Path(info.path).read_text(encoding="utf-8"))
    assert nb["metadata"]["workbench"]["params"]["verify"] is True


def test_reopen_reverifies_and_reproduces_the_lines(verified):
    lib, info, answer = verified
    inv = reopen(lib, info.version_id)
    assert inv.verification is not None
    check = reproduction_check(inv, saved_digest(answer))
    assert check.reproduced is True, check.text()
    assert check.verification == ()
    again = V.save_investigation(inv, root=lib, message="reopened")
    diff = V.diff_versions(lib, again.version_id)
    assert not [x for x in diff.splitlines() if x.startswith("      - ")], diff  # no line lost


def test_a_rerun_without_verification_is_not_reproduced(verified):
    lib, info, answer = verified
    inv = reopen(lib, info.version_id, verify=False)
    assert inv.verification is None
    check = reproduction_check(inv, saved_digest(answer))
    assert check.reproduced is False
    (d,) = check.verification
    assert d["field"] == "verification" and d["now"] is None
    assert d["saved"]["evidence"] == _lines(answer)
    assert check.text().startswith("NOT reproduced: verification not re-run: the saved answer "
                                   "verified chg-1 verified")
    assert check.to_dict()["verification"] == [d]


def test_the_cli_reopen_reports_the_reproduced_verification(verified, capsys):
    lib, info, _ = verified
    p = argparse.ArgumentParser(prog="workbench")
    cli_investigations.register(p.add_subparsers(dest="command"))
    a = p.parse_args(["investigations", "reopen", info.version_id, "--root", str(lib),
                      "--no-save", "--json"])
    assert a.handler(a) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["check"]["reproduced"] is True and out["check"]["verification"] == []
    assert out["answer"]["verification"]["causes"][0]["verdict"] == "verified"


def test_differences_are_structured(verified):
    _, _, answer = verified
    saved = verification_digest(answer["verification"])
    assert verification_differences(saved, copy.deepcopy(saved)) == []
    assert verification_differences(None, saved) == []  # nothing saved: nothing to lose
    now = copy.deepcopy(saved)
    top = now["causes"][0]
    top["estimate"] += 0.05
    top["refuters"]["placebo_treatment"] = False
    lost = top["evidence"].pop(0)
    now["causes"].pop()  # the last hypothesis is no longer verified
    diffs = verification_differences(saved, now)
    by = {(d["change_id"], d["field"]): d for d in diffs}
    assert set(by) == {("chg-1", "estimate"), ("chg-1", "refuter"), ("chg-1", "evidence"),
                       (saved["causes"][-1]["change_id"], "hypothesis")}
    assert by[("chg-1", "refuter")]["text"] == "chg-1: refuter placebo_treatment passed -> failed"
    assert by[("chg-1", "evidence")]["saved"] == [lost] and by[("chg-1", "evidence")]["now"] == []
    assert verification_differences(saved, now, tolerance=0.1) != diffs  # estimate within 0.1


def test_a_check_from_before_the_comparison_cannot_vouch_for_a_verification(verified):
    _, _, answer = verified
    check = {"reproduced": True, "differences": [], "text": "reproduced"}
    _older_check(check, answer)
    assert check["reproduced"] is False and check["verification"][0]["field"] == "verification"
    assert "predates comparing verifications" in check["text"]
    unverified = {"reproduced": True, "differences": [], "text": "reproduced"}
    _older_check(unverified, {k: v for k, v in answer.items() if k != "verification"})
    assert unverified["reproduced"] is True


def test_execute_reverifies_in_the_notebook(verified, tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    key = tmp_path / "server" / "audit.key"
    key.parent.mkdir()
    key.write_text("k" * 64)
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(key))
    lib, saved, _ = verified
    inv = reopen(lib, saved.investigation_id)
    info = V.save_investigation(inv, root=lib, message="signed")  # recorded under the key
    rep = V.reproduce_version(lib, info.version_id, timeout=300, cwd=tmp_path)
    assert rep.reproduced, rep.check
    assert rep.check["verification"] == []
    assert rep.check["causes"][0][0] == "chg-1"
