"""The notebook artifact: built from the template, papermill-parameterized, diffable."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from workbench.errors import UsageError
from workbench.investigation import artifact as A
from workbench.investigation import library as V

REPO = Path(__file__).resolve().parents[2]


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_template_is_found_in_the_source_tree():
    assert A.template_path() == REPO / "notebooks" / "investigation_template.ipynb"
    nb = A.load_template()
    tags = [t for c in nb["cells"] for t in _tags(c)]
    assert {"title", "parameters", "saved-answer", "saved", "decisions"} <= set(tags)


def test_template_and_its_text_twin_agree():
    """notebooks/*.ipynb are paired with py:percent files (jupytext); keep them in sync."""
    import jupytext

    for name in ("investigation_template", "quickstart"):
        ipynb = jupytext.read(REPO / "notebooks" / f"{name}.ipynb")
        py = jupytext.read(REPO / "notebooks" / f"{name}.py")
        assert [c.source for c in ipynb.cells] == [c.source for c in py.cells], name
        assert [_tags(c) for c in ipynb.cells] == [_tags(c) for c in py.cells], name


def test_saved_notebook_is_valid_parameterized_and_has_no_outputs(ios_inv, library):
    import nbformat

    info = V.save_investigation(ios_inv, message="first", root=library)
    nb = nbformat.read(info.path, as_version=4)
    nbformat.validate(nb)
    tags = [_tags(c) for c in nb.cells]
    i = tags.index(["parameters"])
    assert tags[i + 1] == ["injected-parameters"]  # papermill's place for it
    injected = {}
    exec(nb.cells[i + 1].source, {}, injected)
    assert injected.pop("memory") == str((library / "memory.duckdb").resolve())
    assert injected.pop("memory_asof") <= info.created_at  # priors as of the run
    assert injected == {"passport": str(Path(ios_inv.db).parent.parent.resolve()),
                        "metric": "sessions", "window": None,
                        "db": str(Path(ios_inv.db).resolve()),
                        "investigation_id": info.investigation_id, "version": 1,
                        # a re-run verifies when the saved answer was verified
                        "verify": ios_inv.to_dict().get("verification") is not None,
                        "hypotheses": None}  # no person's hypothesis in this run
    saved_cell = next(c for c in nb.cells if "saved" in _tags(c))
    saved = {}
    exec(saved_cell.source, {}, saved)
    assert saved["saved"]["verdict"] == "change"
    assert saved["saved"]["causes"][0][0] == "chg-1"
    assert set(saved["saved"]["inputs"]) == {p["path"] for p in ios_inv.provenance}
    assert all(c.get("outputs", []) == [] for c in nb.cells)
    assert nb.metadata.workbench.answer["causes"][0]["change_id"] == "chg-1"
    answer_md = next(c for c in nb.cells if "saved-answer" in _tags(c)).source
    assert "| 1 | chg-1 | flag | new_flow |" in answer_md and "Evidence for chg-1:" in answer_md
    for c in nb.cells:
        if c.cell_type == "code":
            ast.parse(c.source)


def test_text_twin_reads_back_with_jupytext(ios_inv, library):
    import jupytext
    import nbformat

    info = V.save_investigation(ios_inv, message="first", root=library)
    nb = nbformat.read(info.path, as_version=4)
    back = jupytext.read(info.text_path)
    assert [c.source for c in back.cells] == [c.source for c in nb.cells]
    assert [_tags(c) for c in back.cells] == [_tags(c) for c in nb.cells]


def test_inject_parameters_replaces_an_earlier_injection():
    nb = A.load_template()
    once = A.inject_parameters(nb, {"metric": "a"})
    twice = A.inject_parameters(once, {"metric": "b"})
    cells = [c for c in twice["cells"] if "injected-parameters" in _tags(c)]
    assert len(cells) == 1 and "metric = 'b'" in cells[0]["source"]


def test_builtin_template_when_the_source_tree_is_absent(monkeypatch, tmp_path):
    monkeypatch.setattr(A, "template_path", lambda: None)
    nb = A.load_template()
    assert {"parameters", "saved"} <= {t for c in nb["cells"] for t in _tags(c)}


def test_template_from_environment_must_have_the_tags(monkeypatch, tmp_path):
    bad = tmp_path / "t.ipynb"
    bad.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    monkeypatch.setenv(A.TEMPLATE_ENV, str(bad))
    with pytest.raises(UsageError, match="no cell tagged parameters, saved"):
        A.load_template()


def test_reproduction_check(ios_inv):
    answer = V.canonical_answer(ios_inv)
    saved = A.saved_digest(answer)
    ok = A.reproduction_check(ios_inv, saved)
    assert ok.reproduced and ok.same_ranking and ok.max_confidence_delta == 0
    assert ok.text().startswith("reproduced: verdict change, top cause chg-1")
    bundle = ok._repr_mimebundle_()
    assert bundle[A.MIME_REPRODUCTION]["reproduced"] is True
    # the causes at ~0% are tied: their order is not the ranking's
    tied = json.loads(json.dumps(saved))
    zero = [c for c in tied["causes"] if c[1] <= 1e-3]
    assert len(zero) >= 2 and tied["causes"][0][1] > 0.5
    tied["causes"] = [c for c in tied["causes"] if c[1] > 1e-3] + zero[::-1]
    assert A.reproduction_check(ios_inv, tied).reproduced
    moved = json.loads(json.dumps(saved))
    (a, pa), (b, pb) = moved["causes"][:2]  # another change on top, each keeping its id's place
    moved["causes"][:2] = [[b, pa], [a, pb]]
    moved["inputs"] = {k: "0" * 64 for k in moved["inputs"]}
    bad = A.reproduction_check(ios_inv, moved)
    assert bad.reproduced is False and not bad.same_ranking
    assert "NOT reproduced: ranking" in bad.text() and "inputs changed since saved" in bad.text()
    none = A.reproduction_check(ios_inv, None)
    assert none.reproduced is None and "nothing saved" in none.text()
