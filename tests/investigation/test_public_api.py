"""The public API saves, reopens and lists investigations without private paths."""
from __future__ import annotations

import workbench as wb


def test_a_python_run_saves_only_where_told(ios_passport, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inv = wb.investigate(ios_passport, metric="sessions", db=tmp_path / "s.duckdb")
    assert inv.artifact is None and not (tmp_path / "investigations").exists()
    with wb.set_options(library=tmp_path / "lib"):
        again = wb.investigate(ios_passport, metric="sessions", db=tmp_path / "s.duckdb")
    assert again.artifact and again.artifact.startswith(str(tmp_path / "lib"))
    (entry,) = wb.list_investigations(tmp_path / "lib")
    assert entry.investigation_id == again.investigation_id
    info = wb.save_investigation(inv, message="saved by hand", root=tmp_path / "lib")
    assert info.investigation_id == again.investigation_id and info.version == 2
    reopened = wb.reopen_investigation(tmp_path / "lib", info.version_id)
    assert reopened.based_on == info.version_id and reopened.verdict == inv.verdict
