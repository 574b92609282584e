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
