"""The UI notebooks in a real JupyterLab, driven in Chromium.

Lab serves copies of the notebooks (so the repository's files never get
outputs): ``quickstart.ipynb`` with its parameters injected (the demo passport,
a temporary store and library), ``ui_workbench.ipynb`` reading the same from the
environment. Each test opens a notebook, runs all cells, changes a widget and
sees the Bokeh timeline follow (title and data), with no traceback in any
output.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from workbench.ui.harness import run_all_cells

from ._browser import WAIT, timeline, wait_timeline

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TOP_CAUSE = "chg-0431"
RUN = 240_000  # ms: a fresh kernel imports panel and investigates the demo


def run_all(page: Page, lab, name: str):
    """Open ``name`` in Lab, wait for its kernel, Run > Run All Cells; the notebook panel
    (the dialog handling is in :func:`workbench.ui.harness.run_all_cells`)."""
    page.goto(f"{lab['url']}/tree/{name}?reset")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=RUN)
    if not run_all_cells(page, notebook, timeout_ms=RUN):
        raise AssertionError(f"{name}: Run All Cells never started a cell")
    return notebook



def no_tracebacks(notebook) -> None:
    outputs = notebook.locator(".jp-OutputArea-output").all_inner_texts()
    bad = [t[-2000:] for t in outputs if "Traceback" in t or "Error:" in t[:200]]
    assert not bad, bad


def test_quickstart_shows_the_workbench_and_a_widget_updates_the_plot(page: Page, jupyterlab):
    notebook = run_all(page, jupyterlab, "quickstart.ipynb")
    # The last code cell is the whole workbench: the top cause, the timeline of the
    # whole metric. It renders only once every cell above it has run.
    workbench = notebook.locator(".wb-root")
    expect(workbench.locator(".wb-hypotheses").get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible(
        timeout=RUN)
    first = wait_timeline(page, "everything", timeout=RUN)
    assert first["data"], first
    expect(workbench.locator(".wb-verdict")).to_contain_text(f"top cause {TOP_CAUSE}")
    # Change a widget: the timeline's slice selector.
    select = workbench.locator("select").filter(
        has=page.locator("option[value='platform=ios, app_version=5.2']"))
    expect(select).to_have_count(1)
    expect(select).to_have_value("everything")
    select.select_option(label="platform=ios, app_version=5.2")
    wait_timeline(page, "platform=ios, app_version=5.2", changed_from=first["data"], timeout=WAIT)
    expect(workbench.locator(".wb-crumbs")).to_contain_text("everything › platform=ios, "
                                                            "app_version=5.2")
    no_tracebacks(notebook)
