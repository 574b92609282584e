"""The library wired into the pipeline: ``inv.save/confirm/refute``, priors in the ranking,
similar investigations in the summary, and the ``workbench`` command dispatching to
``investigations`` and ``audit``.
"""
from __future__ import annotations

import workbench as wb
from workbench.investigation import library as V
from workbench.investigation.run import reopen

def test_save_confirm_refute_on_the_object(ios_passport, library):
    inv = wb.investigate(ios_passport, metric="sessions", artifact_dir=library)
    assert inv.version == 1 and inv.clock["loaded_at"] <= V.list_versions(
        library, inv.investigation_id)[0].created_at
    inv.refute("chg-2", note="global deploy", author="ana")
    inv.confirm("chg-1", note="new flow breaks iOS", author="ana")
    info = inv.save("new_flow broke iOS", author="ana")
    assert info.version == 2 and [d["status"] for d in inv.decisions] == ["refuted", "confirmed"]
    d = V.diff_versions(library, info.version_id)
    assert '+ chg-1 confirmed by ana: "new flow breaks iOS"' in d
    assert inv.to_dict()["investigation"] == {"id": inv.investigation_id, "version": 2}


def test_resolved_past_investigation_is_prior_evidence_and_suggested(ios_passport,
                                                                   android_passport, library):
    past = wb.investigate(ios_passport, metric="sessions", artifact_dir=library)
    past.confirm("chg-1", note="new flow breaks the session start")
    V.record_action(library, past.investigation_id, action="revert", target="chg-1")

    inv = wb.investigate(android_passport, metric="sessions", artifact_dir=library)
    top = inv.causes[0]
    assert top["change_id"] == "chg-9"
    assert any(e.startswith("prior (past investigations, not this data): flag new_flow was "
                            "the confirmed cause") for e in top["evidence"])
    assert inv.ranking.top.features["prior"] == 1.0
    others = [c for c in inv.causes if c["change_id"] == "chg-2"]
    assert others and not any(e.startswith("prior") for e in others[0]["evidence"])
    text = inv.summary()
    assert "Similar past investigations:" in text and past.investigation_id in text
    assert "resolved: revert chg-1" in text
    assert inv.to_dict()["similar"][0]["investigation_id"] == past.investigation_id

    # the saved notebook pins the memory: re-running it gives the same ranking, with the prior
    again = reopen(library, inv.investigation_id, pin_memory=True)
    assert [c["change_id"] for c in again.causes] == [c["change_id"] for c in inv.causes]
    assert [c["evidence"] for c in again.causes[:1]] == [top["evidence"]]
    # without the memory, no prior
    bare = wb.investigate(android_passport, metric="sessions", artifact_dir=None)
    assert not any("prior" in e for e in bare.causes[0]["evidence"])


def test_workbench_command_dispatches(ios_inv, library, capsys):
    from workbench import cli

    info = V.save_investigation(ios_inv, message="first", root=library)
    assert cli.main(["investigations", "list", "--root", str(library)]) == 0
    assert info.investigation_id in capsys.readouterr().out
    assert cli.main(["investigations", "show", "inv-nope", "--root", str(library)]) == 2
    assert "workbench: error: no investigation 'inv-nope'" in capsys.readouterr().err
    assert cli.main(["audit", "verify", "--root", str(library)]) == 0
    (library / "audit.jsonl").write_text("tampered\n")
    assert cli.main(["audit", "verify", "--root", str(library)]) == 1
