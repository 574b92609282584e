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
- ``lab_notebook.png``: ``notebooks/ui_workbench.ipynb`` run in JupyterLab, after
  switching its timeline to iOS 5.2 with the slice selector.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "sample_data" / "demo"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TITLE_JS = """(frag) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const d of docs) for (const m of (d.all_models || []))
    if (m && m.constructor && m.constructor.__name__ === "Title" && m.text &&
        m.text.startsWith("conversion_rate ·") && m.text.includes(frag)) return true;
  return false;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, *, env, ready, log: Path, cwd=REPO, timeout=120.0):
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        m = re.search(ready, log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"{cmd[0]} did not start:\n{log.read_text()[-2000:]}")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def shoot_app(browser, out: Path, tmp: Path) -> list[Path]:
    from playwright.sync_api import expect

    env = {**os.environ, "WORKBENCH_INVESTIGATIONS": str(tmp / "library")}
    port = free_port()
    proc, url = start([sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db",
                       str(tmp / "store.duckdb"), "--port", str(port)], env=env,
                      ready=r"serving .* at (http://\S+)", log=tmp / "server.log")
    shots = []
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1050})
        expect.set_options(timeout=60_000)
        page.goto(url)
        expect(page.locator(".wb-hypotheses").get_by_text("#1 chg-0431")).to_be_visible(
            timeout=120_000)
        page.wait_for_function(TITLE_JS, arg="everything", timeout=60_000)
        time.sleep(2)

        def snap(name, full=False):
            p = out / name
            page.screenshot(path=str(p), full_page=full)
            shots.append(p)

        snap("app_overview.png", full=True)
        page.locator(".wb-slices").get_by_text("platform=ios, app_version=5.2",
                                               exact=True).first.click()
        page.wait_for_function(TITLE_JS, arg="app_version=5.2", timeout=60_000)
        time.sleep(1.5)
        snap("app_drilldown.png")
        page.get_by_text("Compare", exact=True).first.click()
        time.sleep(2.5)
        page.locator(".wb-slice-explorer").scroll_into_view_if_needed()
        snap("app_compare.png", full=True)
        page.get_by_role("button", name="Everything").click()
        page.wait_for_function(TITLE_JS, arg="everything", timeout=60_000)
        page.get_by_text("Heatmap", exact=True).first.click()
        time.sleep(2.5)
        snap("app_heatmap.png", full=True)
        page.get_by_text("Ranked", exact=True).first.click()
        # Replay: step to one hour after the onset (step 3 of 6).
        for _ in range(3):
            page.get_by_role("button", name="Step ▶").click()
            time.sleep(0.5)
        page.wait_for_function(TITLE_JS, arg="as of 2026-11-18 15:00", timeout=120_000)
        time.sleep(2)
        snap("app_replay.png")
        page.get_by_role("button", name="Now").click()
        page.wait_for_function(TITLE_JS, arg="everything", timeout=60_000)
        page.get_by_text("Evidence", exact=True).first.click()
        time.sleep(2.5)
        snap("app_evidence.png")
        page.get_by_text("Hypotheses", exact=True).first.click()
        card = page.locator(".wb-selected")
        card.get_by_placeholder("note (optional)").fill("payment step broken on iOS 5.2")
        card.get_by_role("button", name="Confirm").click()
        expect(page.locator(".wb-decisions").get_by_text("confirmed")).to_be_visible()
        page.get_by_text("Story", exact=True).first.click()
        page.get_by_role("button", name="operator").click()
        time.sleep(1.5)
        snap("app_story_operator.png")
        page.close()
    finally:
        stop(proc)
    return shots


def shoot_lab(browser, out: Path, tmp: Path) -> list[Path]:
    from playwright.sync_api import expect

    root = tmp / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "ui_workbench.ipynb", root / "ui_workbench.ipynb")
    env = {**os.environ, "WORKBENCH_PASSPORT": str(DEMO),
           "WORKBENCH_DB": str(tmp / "lab-store.duckdb"),
           "JUPYTER_CONFIG_DIR": str(tmp / "jcfg"), "JUPYTER_RUNTIME_DIR": str(tmp / "jrt"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "jws")}
    lab = Path(sys.executable).with_name("jupyter-lab")
    proc, url = start([str(lab), "--no-browser", "--ip", "127.0.0.1", "--port",
                       str(free_port()), "--IdentityProvider.token=", "--ServerApp.password=",
                       "--allow-root", f"--ServerApp.root_dir={root}"], env=env,
                      ready=r"(http://127\.0\.0\.1:\d+/lab)", log=tmp / "lab.log", cwd=root)
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1050})
        page.goto(url + "/tree/ui_workbench.ipynb?reset")
        nb = page.locator(".jp-NotebookPanel:visible")
        expect(nb.locator(".jp-Cell").first).to_be_visible(timeout=120_000)
        try:
            page.locator(".jp-Dialog").get_by_role("button", name="Select",
                                                   exact=True).click(timeout=15_000)
        except Exception:
            pass
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        expect(nb.get_by_text("('chg-0431'").first).to_be_attached(timeout=180_000)
        select = nb.locator("select").filter(
            has=page.locator("option[value*='app_version=5.2']")).first
        select.select_option(label="platform=ios, app_version=5.2")
        page.wait_for_function(TITLE_JS, arg="app_version=5.2", timeout=60_000)
        select.scroll_into_view_if_needed()
        page.mouse.wheel(0, -120)
        time.sleep(2)
        p = out / "lab_notebook.png"
        page.screenshot(path=str(p))
        errors = [t for t in nb.locator(".jp-OutputArea-output").all_inner_texts()
                  if "Traceback" in t]
        page.close()
        if errors:
            raise SystemExit("a cell printed a traceback:\n" + "\n\n".join(errors)[-6000:])
    finally:
        stop(proc)
    return [p]


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
