"""Governed views in a real JupyterLab: a notebook run as a viewer shows no personal data.

The passport is the demo plus an ``account`` dimension marked ``pii`` whose values are
canaries (``tests/governance/_canary.py``). A notebook in Lab builds the workbench the
way the served app builds a session (:meth:`workbench.ui.app.WorkbenchApp.session`)
for a viewer identity: the ``pii`` column pseudonymised, small cells withheld. After
Run All, none of the canaries is in any output cell's text, in the page's Bokeh
documents, in any websocket frame between Lab and the kernel, or in the notebook as Lab
saves it; a markdown cell with a script, an ``onerror=`` handler and a ``javascript:``
link executes none of them. The same notebook as an admin finds the canaries (the
positive control: the search would see them if they were there).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from workbench.ui.harness import open_notebook, run_all_cells

from .conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.browser]

sys.path.insert(0, str(REPO / "tests" / "governance"))
from _canary import CANARIES, canary_passport  # noqa: E402

RUN = 300_000  # ms: a fresh kernel imports panel, masks the passport and investigates

HOSTILE = ("**A shared note.** <script>window.__wb_pwned = 'script'</script>"
           "<img src='x' onerror=\"window.__wb_pwned = 'onerror'\">"
           " [open](javascript:window.__wb_pwned='link')")

DOCS_JS = """() => (window.Bokeh ? window.Bokeh.documents : []).map(
  d => JSON.stringify(d.to_json ? d.to_json(false) : [...d.all_models].map(m => m.attributes)))"""


def _notebook(role: str, passport: Path, db: Path, library: Path) -> dict:
    import nbformat

    code = [
        "from workbench import ui\n"
        "from workbench.governance.policy import Identity, Role\n"
        "from workbench.ui.app import WorkbenchApp\n"
        "ui.extension()",
        f"app = WorkbenchApp({str(passport)!r}, db={str(db)!r}, library={str(library)!r},\n"
        "                   metric='conversion_rate')\n"
        f"me = Identity('vera', Role.{role.upper()}, source='local')\n"
        "view = app.session(me)\n"
        "view",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(HOSTILE)] + [
        nbformat.v4.new_code_cell(c) for c in code]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture(scope="module")
def governed_lab(jupyterlab, tmp_path_factory):
    """The UI tests' JupyterLab, with a viewer's and an admin's notebook over the canary
    passport written into its root."""
    tmp = tmp_path_factory.mktemp("gov-lab")
    passport = canary_passport(tmp / "canary")
    for role in ("viewer", "admin"):
        nb = _notebook(role, passport, tmp / f"{role}.duckdb", tmp / "library")
        (jupyterlab["root"] / f"gov_{role}.ipynb").write_text(json.dumps(nb, indent=1))
    return {**jupyterlab, "tmp": tmp}


def _run(page: Page, lab: dict, name: str) -> dict:
    """Open ``name``, Run All, wait for the workbench, save; everything the page holds."""
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda f: frames.append(f if isinstance(f, str) else
                                                 f.decode("utf-8", "replace"))))
    notebook, _ = open_notebook(page, lab["url"], name, timeout_ms=RUN)
    assert run_all_cells(page, notebook, timeout_ms=RUN), f"{name}: Run All never started"
    expect(notebook.locator(".wb-hypotheses").get_by_text("#1 chg-0431")).to_be_visible(
        timeout=RUN)
    page.wait_for_timeout(3000)  # the last comm messages of the views
    outputs = notebook.locator(".jp-OutputArea-output").all_inner_texts()
    page.keyboard.press("Control+s")
    saved = lab["root"] / name
    page.wait_for_function(
        "() => !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".jp-mod-dirty')", timeout=60_000)
    page.wait_for_timeout(2000)
    return {"outputs": "\n".join(outputs), "docs": "\n".join(page.evaluate(DOCS_JS)),
            "frames": "\n".join(frames), "saved": saved.read_text(),
            "html": page.content(), "pwned": page.evaluate("() => window.__wb_pwned ?? null"),
            "tracebacks": [t[-1500:] for t in outputs if "Traceback" in t]}


def _found(seen: dict) -> dict:
    return {where: sorted(c for c in CANARIES if c in text)
            for where, text in seen.items() if isinstance(text, str)}


def test_a_viewers_notebook_in_lab_shows_no_canary_and_runs_no_script(page: Page,
                                                                       governed_lab):
    seen = _run(page, governed_lab, "gov_viewer.ipynb")
    assert not seen["tracebacks"], seen["tracebacks"]
    assert seen["docs"] and "comm_msg" in seen["frames"]  # what was searched is there
    assert "application/vnd" in seen["saved"]  # Lab saved the outputs
    leaks = {where: c for where, c in _found(seen).items() if c}
    assert not leaks, leaks
    # the hostile note: rendered, and nothing of it ran or can run
    note = page.locator(".jp-MarkdownCell .jp-RenderedMarkdown").first
    expect(note).to_contain_text("A shared note.")
    assert note.locator("script, img[onerror]").count() == 0
    assert not [h for h in note.locator("a").evaluate_all("as => as.map(a => a.href)")
                if h.lower().startswith("javascript")]
    assert seen["pwned"] is None
    page.screenshot(path=str(governed_lab["tmp"] / "lab-viewer.png"), full_page=True)


def test_the_admins_notebook_finds_the_canaries(page: Page, governed_lab):
    """The positive control: the same notebook as an admin (``view_unmasked``)."""
    seen = _run(page, governed_lab, "gov_admin.ipynb")
    found = _found(seen)
    assert len(found["docs"]) >= 2 and len(found["frames"]) >= 2, found
    assert found["saved"], found
