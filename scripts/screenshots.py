"""Screenshots of the workbench for the docs: the served app and the notebook in JupyterLab.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--only app|lab]

Starts the real server (``python -m workbench.ui.app``, what ``workbench serve``
runs) and JupyterLab on free 127.0.0.1 ports, with a temporary store, library and
Lab settings, drives Debian's Chromium (``/usr/bin/chromium``) with Playwright and
writes PNGs:

- ``app_overview.png``: the whole page on the demo passport;
- ``app_drilldown.png``: the timeline after clicking the top slice;
- ``app_compare.png``: iOS 5.1 against 5.2 side by side;
- ``app_heatmap.png``: share of the divergence by platform and app version;
- ``app_replay.png``: the replay one hour after the onset;
- ``app_evidence.png``: the effect estimate and observed-vs-expected timeline;
- ``app_story_operator.png``: the story for an operator, after a confirmed cause;
- ``lab_quickstart.png``: ``notebooks/quickstart.ipynb`` run in JupyterLab: the
  whole workbench inline, after switching its timeline to iOS 5.2 with the slice
  selector;
- ``lab_notebook.png``: ``notebooks/ui_workbench.ipynb`` run in JupyterLab (the
  views alone, one per cell), after the same switch.

Each shot is taken once the page shows what it is about (a plot title, a text),
then after the browser has painted twice more (``settle``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from workbench.ui.harness import (SAME_END_JS, free_port, open_notebook,  # noqa: E402
                                  run_all_cells, start_process, stop_process,
                                  write_lab_notebooks, write_lab_settings)

DEMO = REPO / "sample_data" / "demo"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
#: A Bokeh figure titled ``frag...`` (any plot: heatmap, rate vs mix, effect...).
FIGURE_JS = """(frag) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const d of docs) for (const m of (d.all_models || []))
    if (m && m.title && typeof m.title.text === "string" && m.title.text.startsWith(frag))
      return true;
  return false;
}"""
#: The timeline titled exactly ``frag`` (``conversion_rate · everything``: live, no replay).
EXACT_TITLE_JS = """(title) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const d of docs) for (const m of (d.all_models || []))
    if (m && m.title && m.title.text === title) return true;
  return false;
}"""
TITLE_JS = """(frag) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const d of docs) for (const m of (d.all_models || []))
    if (m && m.constructor && m.constructor.__name__ === "Title" && m.text &&
        m.text.startsWith("conversion_rate ·") && m.text.includes(frag)) return true;
  return false;
}"""

def settle(page) -> None:
    """Two animation frames and no layout work pending: what is drawn is on screen."""
    page.evaluate("""() => new Promise(r => requestAnimationFrame(
        () => requestAnimationFrame(() => setTimeout(r, 300))))""")


def shoot_app(browser, out: Path, tmp: Path) -> list[Path]:
    from playwright.sync_api import expect

    env = {**os.environ, "WORKBENCH_INVESTIGATIONS": str(tmp / "library")}
    port = free_port()
    proc, url = start_process([sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db",
                       str(tmp / "store.duckdb"), "--port", str(port)], env=env,
                      ready=r"serving .* at (http://\S+)", log=tmp / "server.log", cwd=REPO)
    shots = []
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1050})
        expect.set_options(timeout=60_000)
        page.goto(url)
        expect(page.locator(".wb-hypotheses").get_by_text("#1 chg-0431")).to_be_visible(
            timeout=120_000)
        page.wait_for_function(TITLE_JS, arg="everything", timeout=60_000)
        page.wait_for_function(FIGURE_JS, arg="Slices by share", timeout=60_000)

        def snap(name, full=False):
            page.mouse.move(1495, 1045)  # no hover effect or tooltip in the picture
            page.evaluate("window.scrollTo(0, 0)")
            settle(page)
            p = out / name
            page.screenshot(path=str(p), full_page=full)
            shots.append(p)

        snap("app_overview.png", full=True)
        page.locator(".wb-slices").get_by_role("button", name="platform=ios, app_version=5.2",
                                               exact=True).click()
        page.wait_for_function(TITLE_JS, arg="app_version=5.2", timeout=60_000)
        expect(page.locator(".wb-crumbs")).to_contain_text("app_version=5.2")
        snap("app_drilldown.png")
        page.get_by_text("Compare", exact=True).first.click()
        expect(page.locator(".wb-compare-stats")).to_contain_text("configuration")
        page.wait_for_function(FIGURE_JS, arg="B: ", timeout=60_000)
        page.locator(".wb-slice-explorer").scroll_into_view_if_needed()
        snap("app_compare.png", full=True)
        page.get_by_role("button", name="Everything").click()
        page.wait_for_function(EXACT_TITLE_JS, arg="conversion_rate · everything",
                               timeout=60_000)
        page.get_by_text("Heatmap", exact=True).first.click()
        page.wait_for_function(FIGURE_JS, arg="Share of the divergence by", timeout=60_000)
        snap("app_heatmap.png", full=True)
        page.get_by_text("Ranked", exact=True).first.click()
        # Replay: step to one hour after the onset (step 3 of 6).
        label = page.locator(".wb-replay-label")
        for i in range(1, 4):
            page.get_by_role("button", name="Step ▶").click()
            expect(label).to_contain_text(f"step {i}/6")
        page.wait_for_function(TITLE_JS, arg="as of 2026-11-18 15:00", timeout=240_000)
        expect(label).not_to_contain_text("computing", timeout=240_000)
        snap("app_replay.png")
        page.get_by_role("button", name="Now").click()
        expect(label).to_contain_text("now:")
        page.wait_for_function(EXACT_TITLE_JS, arg="conversion_rate · everything",
                               timeout=60_000)
        page.get_by_text("Evidence", exact=True).first.click()
        expect(page.locator(".wb-effect")).to_contain_text("Effect of chg-0431")
        expect(page.locator(".wb-status")).not_to_contain_text("Replay:")
        # The observed-vs-expected plot shows the whole data again: it ends where the
        # live timeline ends (not at the replay time).
        page.wait_for_function(SAME_END_JS, arg=["Observed vs expected",
                                                 "conversion_rate · everything"],
                               timeout=60_000)
        snap("app_evidence.png")
        page.get_by_text("Hypotheses", exact=True).first.click()
        card = page.locator(".wb-selected")
        card.get_by_placeholder("note (optional)").fill("payment step broken on iOS 5.2")
        card.get_by_role("button", name="Confirm").click()
        expect(page.locator(".wb-decisions").get_by_text("confirmed")).to_be_visible()
        page.get_by_text("Story", exact=True).first.click()
        page.get_by_role("button", name="operator").click()
        expect(page.locator(".wb-story")).to_contain_text("Roll back")
        snap("app_story_operator.png")
        page.close()
    finally:
        stop_process(proc)
    return shots


def shoot_lab(browser, out: Path, tmp: Path) -> list[Path]:
    from playwright.sync_api import expect

    root = tmp / "lab"
    root.mkdir()
    write_lab_notebooks(root, tmp, DEMO, REPO)
    settings = tmp / "lab-settings"
    write_lab_settings(settings)
    env = {**os.environ, "WORKBENCH_PASSPORT": str(DEMO),
           "WORKBENCH_DB": str(tmp / "lab-store.duckdb"),
           "WORKBENCH_INVESTIGATIONS": str(tmp / "library"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_CONFIG_DIR": str(tmp / "jcfg"), "JUPYTER_RUNTIME_DIR": str(tmp / "jrt"),
           "JUPYTER_DATA_DIR": str(tmp / "jdata"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "jws")}
    lab = Path(sys.executable).with_name("jupyter-lab")
    proc, url = start_process([str(lab), "--no-browser", "--ip", "127.0.0.1", "--port",
                       str(free_port()), "--IdentityProvider.token=", "--ServerApp.password=",
                       "--allow-root", f"--ServerApp.root_dir={root}",
                       "--ServerApp.disable_check_xsrf=True"], env=env,
                      ready=r"(http://127\.0\.0\.1:\d+/lab)", log=tmp / "lab.log", cwd=root)
    shots = []
    try:
        for name, png, ready in (("quickstart.ipynb", "lab_quickstart.png", "#1 chg-0431"),
                                 ("ui_workbench.ipynb", "lab_notebook.png", "('chg-")):
            page = browser.new_page(viewport={"width": 1500, "height": 1050})
            nb, _ = open_notebook(page, url, name)
            if not run_all_cells(page, nb):
                raise SystemExit(f"{name}: Run All Cells never started a cell")
            expect(nb.get_by_text(ready).first).to_be_attached(timeout=240_000)
            page.wait_for_function(TITLE_JS, arg="", timeout=120_000)
            select = nb.locator("select").filter(
                has=page.locator("option[value='platform=ios, app_version=5.2']")).first
            select.select_option(label="platform=ios, app_version=5.2")
            page.wait_for_function(TITLE_JS, arg="app_version=5.2", timeout=120_000)
            if name == "quickstart.ipynb":
                # The workbench cell at the top of the window.
                nb.locator(".wb-root").first.evaluate("e => e.scrollIntoView()")
                page.mouse.wheel(0, -140)
            else:
                select.scroll_into_view_if_needed()
                page.mouse.wheel(0, -120)
            settle(page)
            p = out / png
            page.screenshot(path=str(p))
            shots.append(p)
            errors = [t for t in nb.locator(".jp-OutputArea-output").all_inner_texts()
                      if "Traceback" in t]
            page.close()
            if errors:
                raise SystemExit(f"{name}: a cell printed a traceback:\n"
                                 + "\n\n".join(errors)[-6000:])
    finally:
        stop_process(proc)
    return shots


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--only", choices=["app", "lab"])
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    shots = []
    with tempfile.TemporaryDirectory(prefix="wb-shots-") as t, sync_playwright() as pw:
        tmp = Path(t)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            if a.only in (None, "app"):
                shots += shoot_app(browser, out, tmp)
            if a.only in (None, "lab"):
                shots += shoot_lab(browser, out, tmp)
        finally:
            browser.close()
    for s in shots:
        print(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
