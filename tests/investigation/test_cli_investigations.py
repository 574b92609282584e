"""``workbench investigations ...`` and ``workbench audit ...`` through their argparse handlers.

Until cli.py calls ``register``, the tests build the same parser around it.
"""
from __future__ import annotations

import argparse
import json

import pytest

from workbench import cli_investigations
from workbench.errors import UsageError
from workbench.investigation import library as V


def run(capsys, *argv) -> tuple[int, str]:
    p = argparse.ArgumentParser(prog="workbench")
    cli_investigations.register(p.add_subparsers(dest="command"))
    a = p.parse_args([str(x) for x in argv])
    code = a.handler(a)
    return code, capsys.readouterr().out


@pytest.fixture
def saved(ios_inv, library):
    return V.save_investigation(ios_inv, message="first look", author="ana", root=library)


def test_list_show_diff_decide_stats(capsys, saved, ios_inv, library):
    iid = saved.investigation_id
    code, out = run(capsys, "investigations", "list", "--root", library)
    assert code == 0 and iid in out and "open" in out
    code, out = run(capsys, "investigations", "show", iid, "--root", library)
    assert "Verdict: CHANGE" in out and "#1 chg-1" in out
    code, out = run(capsys, "investigations", "show", iid, "--root", library, "--json")
    assert json.loads(out)["answer"]["causes"][0]["change_id"] == "chg-1"
    code, out = run(capsys, "investigations", "show", iid, "--root", library, "--text")
    assert out.startswith("# ---") and "# %% tags=[\"injected-parameters\"]" in out
    code, out = run(capsys, "investigations", "decide", iid, "--root", library,
                    "--hypothesis", "chg-1", "--status", "confirmed", "--note", "yes",
                    "--author", "ana")
    assert code == 0 and "chg-1 confirmed by ana" in out
    code, out = run(capsys, "investigations", "note", iid, "checked the dashboards",
                    "--root", library, "--author", "bo")
    code, out = run(capsys, "investigations", "action", iid, "revert", "--target", "chg-1",
                    "--root", library, "--author", "bo")
    assert "action revert chg-1" in out
    code, out = run(capsys, "investigations", "show", iid, "--root", library)
    tail = out.split("Decisions, notes and actions:")[1]  # issue 17: show carries the journal
    assert 'ana: decision: chg-1 confirmed "yes"' in tail
    assert "bo: note: checked the dashboards" in tail and "bo: action: revert chg-1" in tail
    code, out = run(capsys, "investigations", "show", iid, "--root", library, "--json")
    assert [e["kind"] for e in json.loads(out)["journal"]] == ["decision", "note", "action"]
    V.save_investigation(ios_inv, message="confirmed", author="ana", root=library)
    code, out = run(capsys, "investigations", "diff", iid, "--root", library)
    assert 'Decisions:\n  + chg-1 confirmed by ana: "yes"' in out
    assert "Actions:\n  + revert chg-1 by bo" in out
    code, out = run(capsys, "investigations", "show", iid, "--versions", "--root", library)
    assert "@v0001" in out and "@v0002" in out
    code, out = run(capsys, "investigations", "stats", "--root", library, "--json")
    st = json.loads(out)
    assert st["investigations"] == 1 and st["decided"] == 1
    code, out = run(capsys, "investigations", "list", "--root", library, "--status", "resolved")
    assert iid in out and "resolved: revert chg-1" in out
    code, out = run(capsys, "investigations", "list", "--root", library, "--slice",
                    "platform=ios", "--text", "dashboards")
    assert iid in out


def test_reopen_without_saving_compares(capsys, saved, library):
    code, out = run(capsys, "investigations", "reopen", saved.investigation_id, "--root",
                    library, "--no-save")
    assert code == 0
    assert f"compared with {saved.version_id}: reproduced: verdict change, top cause chg-1" in out
    assert len(V.list_versions(library, saved.investigation_id)) == 1
    code, out = run(capsys, "investigations", "reopen", saved.investigation_id, "--root",
                    library, "-m", "second look")
    assert f"saved {saved.investigation_id}@v0002" in out


def test_similar(capsys, saved, android_inv, library):
    V.record_decision(library, saved.investigation_id, hypothesis="chg-1", status="confirmed")
    other = V.save_investigation(android_inv, message="android", root=library)
    code, out = run(capsys, "investigations", "similar", other.investigation_id, "--root",
                    library)
    assert out.startswith(f"similar to {saved.investigation_id}")
    assert "resolved: confirmed chg-1" in out


def test_user_errors_are_workbench_errors(capsys, saved, library):
    with pytest.raises(UsageError, match="no investigation 'inv-x'"):
        run(capsys, "investigations", "show", "inv-x", "--root", library)
    with pytest.raises(UsageError, match="is not a hypothesis"):
        run(capsys, "investigations", "decide", saved.investigation_id, "--root", library,
            "--hypothesis", "chg-404", "--status", "refuted")


def test_audit_verify_and_log(capsys, saved, library):
    code, out = run(capsys, "audit", "verify", "--root", library)
    assert code == 0 and "OK, 1 records" in out
    code, out = run(capsys, "audit", "log", "--root", library)
    assert "artifact.saved" in out and saved.investigation_id in out
    log = library / "audit.jsonl"
    rec = json.loads(log.read_text())
    rec["actor"] = "mallory"
    log.write_text(json.dumps(rec) + "\n")
    code, out = run(capsys, "audit", "verify", "--root", library)
    assert code == 1 and "TAMPERED at line 1" in out
    code, out = run(capsys, "audit", "verify", "--log", log, "--json")
    assert json.loads(out)["first_bad_line"] == 1


def test_bare_command_prints_usage(capsys):
    p = argparse.ArgumentParser(prog="workbench")
    cli_investigations.register(p.add_subparsers(dest="command"))
    a = p.parse_args(["investigations"])
    assert a.handler(a) == 2
