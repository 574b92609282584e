"""notebooks/ui_workbench.ipynb in a real JupyterLab, driven in Chromium.

Lab serves a copy of the notebook (so the repository's file never gets outputs);
the kernel reads the demo passport and a temporary store from the environment.
Run all, change the slice selector of the timeline, see the Bokeh plot follow.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TITLE_JS = """(frag) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const d of docs) for (const m of (d.all_models || []))
    if (m && m.constructor && m.constructor.__name__ === "Title" && m.text &&
        m.text.startsWith("conversion_rate ·") && m.text.includes(frag)) return true;
  return false;
}"""


def test_notebook_runs_in_lab_and_a_widget_updates_the_plot(page: Page, jupyterlab):
    page.goto(jupyterlab["url"] + "/tree/ui_workbench.ipynb?reset")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=90_000)
    # Lab may ask which kernel to start: the notebook's own (python3).
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.get_by_role("button", name="Select", exact=True).click(timeout=15_000)
    except Exception:
        pass  # no dialog: the kernel started on its own
    # Wait for the kernel, then Run > Run All Cells.
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']:visible").first
           ).to_be_attached(timeout=90_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # The timeline cell renders a Bokeh plot titled after the slice it shows.
    page.wait_for_function(TITLE_JS, arg="everything", timeout=120_000)
    # Every cell has run (the last one prints the selected cause): nothing queued in the
    # kernel can undo the change below.
    expect(notebook.get_by_text("('chg-0431'").first).to_be_attached(timeout=120_000)
    # Change a widget: the timeline's slice selector.
    select = notebook.locator("select").filter(has=page.locator("option[value*='app_version=5.2']"))
    select.first.select_option(label="platform=ios, app_version=5.2")
    page.wait_for_function(TITLE_JS, arg="app_version=5.2", timeout=60_000)
    # No cell failed.
    assert notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                            ).filter(has_text="Traceback").count() == 0
