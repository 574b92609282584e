"""A notebook saved before the investigation package was split still reopens and re-runs.

``fixtures/saved_before_split.ipynb`` is a version saved by ``workbench investigate
sample_data/demo`` with the layout of ``investigation/artifact.py`` and
``investigation/versions.py`` (its cells import
``workbench.investigation.artifact.rerun_investigation`` and
``reproduction_check``). Every saved version embeds those imports, so the old
path stays as a thin shim; this test executes the saved notebook on a real
kernel (nbclient) with its store and memory moved to a temporary folder, and
reads the reproduction check it records.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAVED = Path(__file__).with_name("fixtures") / "saved_before_split.ipynb"
MIME = "application/vnd.workbench.reproduction+json"


def test_a_notebook_saved_before_the_split_reexecutes(tmp_path):
    nbformat = pytest.importorskip("nbformat")  # the [notebooks] extra; `make venv` has it
    from nbclient import NotebookClient

    from workbench.investigation.artifact import inject_parameters

    nb = nbformat.read(SAVED, as_version=4)
    src = "\n".join("".join(c.source) for c in nb.cells if c.cell_type == "code")
    assert "from workbench.investigation.artifact import rerun_investigation" in src
    params = {"passport": str(REPO / "sample_data" / "demo"), "db": str(tmp_path / "s.duckdb"),
              "memory": str(tmp_path / "memory.duckdb")}
    nb = nbformat.from_dict(inject_parameters(nb, params))
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    checks = [o["data"][MIME] for c in nb.cells for o in c.get("outputs", [])
              if MIME in o.get("data", {})]
    assert len(checks) == 1
    check = checks[0]
    saved = json.loads(json.dumps(nb.metadata["workbench"]))
    assert check["reproduced"] is True, check
    assert check["top"] == check["saved_top"] == saved["answer"]["causes"][0]["change_id"]


def test_new_notebooks_import_public_names_only():
    """Versions saved from now on import from ``workbench.investigation``, not a module path."""
    import re

    from workbench.investigation.library.notebook import (_builtin_template, build_notebook,
                                                          load_template)

    for template in (_builtin_template(), load_template()):
        nb = build_notebook({"metric": "m", "verdict": "none"}, {"passport": "p"},
                            template=template)
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        imports = re.findall(r"^from (workbench[\w.]*) import", code, re.M)
        assert imports and set(imports) == {"workbench.investigation"}, imports


@pytest.mark.parametrize("old, new", [
    ("workbench.investigation.versions", "workbench.investigation.library"),
    ("workbench.investigation.memory", "workbench.investigation.library.memory"),
    ("workbench.investigation.artifact", "workbench.investigation.library.notebook"),
])
def test_old_paths_are_thin_shims_of_the_library(old, new):
    """Code written against the old modules gets the very same objects, and the old
    modules define nothing of their own (re-exports only, so there is one copy)."""
    import ast
    import importlib

    old_m, new_m = importlib.import_module(old), importlib.import_module(new)
    names = [n for n in getattr(new_m, "__all__", dir(new_m)) if not n.startswith("_")]
    shared = [n for n in names if hasattr(old_m, n)]
    assert len(shared) >= 8
    assert all(getattr(old_m, n) is getattr(new_m, n) for n in shared)
    tree = ast.parse(Path(old_m.__file__).read_text(encoding="utf-8"))
    body = [s for s in tree.body if not (isinstance(s, ast.Expr)
                                        and isinstance(s.value, ast.Constant))]
    assert body and all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body)


def test_code_using_the_old_versions_path_saves_and_reads(ios_passport, tmp_path):
    """A script written before the split (old import path) saves, lists and diffs."""
    import workbench as wb
    from workbench.investigation import versions

    inv = wb.investigate(ios_passport, metric="sessions", artifact_dir=None)
    a = versions.save_investigation(inv, root=tmp_path / "lib", message="one")
    b = versions.save_investigation(inv, root=tmp_path / "lib", message="two")
    assert b.parent == a.version_id
    (entry,) = versions.list_investigations(tmp_path / "lib")
    assert entry.versions == 2 and versions.verify_library(tmp_path / "lib").ok
    assert "No change in the answer." in versions.diff_versions(tmp_path / "lib", b.version_id)
