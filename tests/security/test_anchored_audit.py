"""A re-chained audit log is caught by an anchor the library's editor cannot rewrite.

The attack of issue 19, done as a person with write access to the library would: inject a
cell into a saved notebook, recompute every hash the library records for it (versions.jsonl,
the text twin, the ``artifact.saved`` audit record), re-chain the audit log from there and
rewrite its head. With no configuration at all, the default anchor file (under
``$XDG_STATE_HOME``, outside the library; tests/conftest.py points it at a per-session
folder) catches it; so does the server's HMAC key. Against a bare hash chain every check
passes, yet ``reopen --execute`` runs nothing that an anchor or key does not vouch for.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from workbench.governance.audit import (AuditError, AuditLog, _read_head, canonical_json,
                                        default_anchor, record_hash, verify_audit)
from workbench.investigation.artifact import notebook_text

from ..conftest import make_events, write_passport
from .conftest import run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:jupyter_client")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rechain(lib: Path, marker: Path) -> None:
    """Inject a cell and forge every record of it, as an editor without the key can."""
    log = lib / "audit.jsonl"
    folder = next(p for p in lib.iterdir() if p.is_dir() and p.name.startswith("inv-"))
    nb_path = folder / "v0001.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["cells"].insert(1, {"cell_type": "code", "metadata": {}, "execution_count": None,
                           "outputs": [], "id": "injected",
                           "source": f"open({str(marker)!r}, 'w').write('ran')"})
    nb_path.write_text(json.dumps(nb, indent=1))
    text_path = folder / "v0001.py"
    text_path.write_text(notebook_text(nb))
    hashes = {"content_hash": _sha(nb_path.read_bytes()),
              "text_hash": _sha(text_path.read_bytes())}
    index = folder / "versions.jsonl"
    rows = [json.loads(x) for x in index.read_text().splitlines()]
    rows[0].update(hashes)
    index.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    prev = "0" * 64
    for r in recs:
        if r["action"] == "artifact.saved":
            r["details"].update(hashes)
        r["prev_hash"] = prev
        r["hash"] = record_hash(r)
        prev = r["hash"]
    log.write_text("".join(canonical_json(r) + "\n" for r in recs))
    head = lib / "audit.jsonl.head"
    head.write_text(json.dumps({"seq": len(recs), "hash": prev}) + "\n")


def _save(tmp_path, rng) -> tuple[Path, str]:
    lib = tmp_path / "lib"
    good = write_passport(tmp_path / "p", make_events(rng, hours=24 * 15))
    r = run("investigate", good, "--metric", "conversion_rate", "-q", "--out", lib,
            "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return lib, json.loads(r.stdout)["artifact"]


def test_with_no_configuration_the_default_anchor_catches_a_rechained_log(tmp_path, rng):
    assert "WORKBENCH_AUDIT_ANCHOR" not in os.environ
    assert "WORKBENCH_AUDIT_KEY_FILE" not in os.environ
    lib, artifact = _save(tmp_path, rng)
    anchor = default_anchor(lib / "audit.jsonl")
    assert anchor.is_file() and not anchor.resolve().is_relative_to(lib.resolve())
    assert Path(os.environ["XDG_STATE_HOME"]) in anchor.parents  # never the real home
    assert verify_audit(lib / "audit.jsonl").signed
    vid = Path(artifact).parent.name
    # the safe path works out of the box: the saved notebook re-executes
    r = run("investigations", "reopen", vid, "--execute", "--root", lib)
    assert r.returncode == 0, r.stderr

    marker = tmp_path / "injected-cell-ran"
    _rechain(lib, marker)
    r = run("audit", "verify", "--log", lib / "audit.jsonl")
    assert r.returncode == 1 and "recorded when it was written" in r.stdout, r.stdout
    assert str(anchor) in r.stdout
    r = run("investigations", "verify", "--root", lib)
    assert r.returncode == 1 and "recorded when it was written" in r.stdout, r.stdout
    r = run("investigations", "reopen", vid, "--execute", "--root", lib)
    assert r.returncode == 2 and "recorded when it was written" in r.stderr, r.stderr
    assert not marker.exists()
    # deleting the log and its head does not hide the history either
    (lib / "audit.jsonl").unlink()
    (lib / "audit.jsonl.head").unlink()
    rep = verify_audit(lib / "audit.jsonl")
    assert not rep.ok and "log is missing" in rep.reason


def test_an_anchor_that_cannot_be_written_stops_the_append_with_nothing_written(tmp_path,
                                                                                monkeypatch):
    (tmp_path / "state").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = AuditLog(tmp_path / "lib" / "audit.jsonl")
    with pytest.raises(AuditError, match="cannot write the audit anchor"):
        log.append("note.added", actor="ana", subject="inv-1")
    assert not log.path.exists() or log.path.read_bytes() == b""


@pytest.fixture
def saved(tmp_path, rng, monkeypatch):
    """A library with one saved investigation, written while the server key is set."""
    key = tmp_path / "server" / "audit.key"
    key.parent.mkdir()
    key.write_text(os.urandom(32).hex())
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(key))
    lib, artifact = _save(tmp_path, rng)
    assert "mac" in _read_head(lib / "audit.jsonl.head")
    return lib, artifact


def test_a_rechained_log_is_caught_with_the_key_and_not_without(saved, tmp_path, monkeypatch):
    lib, artifact = saved
    marker = tmp_path / "injected-cell-ran"
    assert run("audit", "verify", "--log", lib / "audit.jsonl").returncode == 0
    _rechain(lib, marker)

    # the attack works against a bare hash chain (here: verified from another account,
    # whose state folder never saw this library, and without the key)
    key = os.environ["WORKBENCH_AUDIT_KEY_FILE"]
    monkeypatch.delenv("WORKBENCH_AUDIT_KEY_FILE")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "other-account-state"))
    assert run("audit", "verify", "--log", lib / "audit.jsonl").returncode == 0
    assert run("investigations", "verify", "--root", lib).returncode == 0
    # ... yet even then an unsigned log executes nothing
    r = run("investigations", "reopen", Path(artifact).parent.name, "--execute", "--root", lib)
    assert r.returncode == 2 and "not signed or anchored" in r.stderr, r.stderr
    assert not marker.exists()

def test_the_anchor_file_catches_a_rollback_to_an_older_signed_head(tmp_path, monkeypatch):
    key = tmp_path / "server" / "audit.key"
    key.parent.mkdir()
    key.write_text("s" * 40)
    anchor = tmp_path / "server" / "anchor.jsonl"
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(key))
    monkeypatch.setenv("WORKBENCH_AUDIT_ANCHOR", str(anchor))
    log = AuditLog(tmp_path / "lib" / "audit.jsonl")
    for i in range(3):
        log.append("note.added", actor="ana", subject="inv-1", details={"i": i})
    old_head = log.head_path.read_text()
    old_lines = log.path.read_text()
    log.append("hypothesis.refuted", actor="ana", subject="inv-1", details={"i": 3})
    rep = verify_audit(log.path)
    assert rep.ok and rep.signed and rep.records == 4
    # roll back: the log and its head as they were after record 3 (a validly signed head)
    log.path.write_text(old_lines)
    log.head_path.write_text(old_head)
    monkeypatch.delenv("WORKBENCH_AUDIT_ANCHOR")
    assert verify_audit(log.path).ok  # the key alone (the default anchor never saw it) cannot tell
    monkeypatch.setenv("WORKBENCH_AUDIT_ANCHOR", str(anchor))
    rep = verify_audit(log.path)
    assert not rep.ok and rep.first_bad_line == 4
    assert "anchor file" in rep.reason and "deleted" in rep.reason


def test_an_anchor_next_to_the_log_or_a_short_key_is_refused(tmp_path, monkeypatch):
    log = AuditLog(tmp_path / "lib" / "audit.jsonl")
    monkeypatch.setenv("WORKBENCH_AUDIT_ANCHOR", str(tmp_path / "lib" / "anchor.jsonl"))
    with pytest.raises(AuditError, match="sits in the folder of the log"):
        log.append("note.added", actor="ana", subject="inv-1")
    monkeypatch.delenv("WORKBENCH_AUDIT_ANCHOR")
    (tmp_path / "short.key").write_text("abc")
    monkeypatch.setenv("WORKBENCH_AUDIT_KEY_FILE", str(tmp_path / "short.key"))
    r = run("audit", "verify", "--log", log.path)
    assert r.returncode == 2 and "expected at least 32" in r.stderr, r.stderr
