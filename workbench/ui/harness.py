"""Driving the real thing from outside: servers, JupyterLab and Chromium, for the
browser tests, the screenshots and the latency benchmark (one copy of each recipe).

Nothing here runs in the served app. Playwright is imported inside the functions
that need it; ``../shared/design/stack-notes.md`` has the recipes these follow
(Debian's Chromium, Lab offline, waits on conditions rather than sleeps).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

#: the Lab run-all start marker: a code cell's prompt shows ``[*]`` or ``[n]``
STARTED = re.compile(r"\[(\*|\d+)\]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(cmd: list[str], *, env: dict, ready: re.Pattern | str, log: Path,
                  timeout: float = 120.0, cwd: Path | None = None
                  ) -> tuple[subprocess.Popen, str]:
    """Start ``cmd`` in its own process group; return it and the first match of ``ready``.

    The group lets :func:`stop_process` stop it with its children (kernels, the
    replay worker) and nothing else.
    """
    ready = re.compile(ready) if isinstance(ready, str) else ready
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        m = ready.search(log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"{' '.join(map(str, cmd[:4]))}... did not start in {timeout:.0f}s:\n"
                       + log.read_text()[-3000:])


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the group started by :func:`start_process`, then SIGKILL if it lingers."""
    def signal_group(sig):
        try:
            os.killpg(proc.pid, sig)  # the group's id is the leader's pid
        except ProcessLookupError:
            pass

    signal_group(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        signal_group(signal.SIGKILL)
        proc.wait(10)
    signal_group(signal.SIGKILL)  # children that outlived the leader go too


def write_lab_settings(path: Path) -> None:
    """Lab settings for a test run: every cell stays in the page, no news pop-up.

    Lab 4 "windows" long notebooks (cells far from the viewport are detached and
    re-rendered); a widget in such a cell can be changed in the page and never reach
    the kernel, which made the notebook test flaky.
    """
    nb = path / "@jupyterlab" / "notebook-extension"
    nb.mkdir(parents=True, exist_ok=True)
    (nb / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    ap = path / "@jupyterlab" / "apputils-extension"
    ap.mkdir(parents=True, exist_ok=True)
    (ap / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def write_lab_notebooks(root: Path, tmp: Path, passport: Path, repo: Path) -> None:
    """Copies of the UI notebooks for a Lab rooted at ``root``, without outputs.

    ``quickstart.ipynb`` gets its parameters injected the papermill way (the
    passport by absolute path, a store and library under ``tmp``); neither keeps
    its jupytext pairing: with it, Lab asked which kernel to start after the
    kernel had started, and the dialog swallowed "Run All Cells".

    Outputs are dropped: in a checkout where the notebook had been opened in Lab,
    Lab had saved its outputs into the file, and the copy opened with them. Each
    saved Panel output is a static Bokeh document; Run All replaces the output
    but BokehJS keeps the old document in ``window.Bokeh.documents``, ahead of the
    live one, so a reader of "the timeline" found the dead copy and waited for it
    to change (the views-alone test failed every time with saved outputs, and
    never without).
    """
    import nbformat

    from ..investigation.artifact import inject_parameters

    for name in ("quickstart", "ui_workbench"):
        nb = nbformat.read(repo / "notebooks" / f"{name}.ipynb", as_version=4)
        if name == "quickstart":
            nb = inject_parameters(nb, {"passport": str(passport),
                                        "db": str(tmp / "qs-store.duckdb"),
                                        "library": str(tmp / "library")})
        nb.metadata.pop("jupytext", None)
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        (root / f"{name}.ipynb").write_text(json.dumps(nb, indent=1))


def run_all_cells(page, notebook, *, timeout_ms: int = 240_000, tries: int = 6) -> bool:
    """Run > Run All Cells in the open notebook once its kernel is idle.

    On a loaded machine Lab can ask which kernel to use after the kernel already
    showed idle, and that dialog swallows the command: the dialog is answered
    (the preselected kernel) whenever it shows, and the command repeated until
    the first code cell is running or done, at most ``tries`` times and within
    ``timeout_ms``; answering a dialog does not count as a try (the dialog can show
    again after being answered, and each time it takes the command). Lab's
    ``autoStartDefaultKernel`` setting is not used instead: with it Lab started a
    kernel and shut it down a second later, and sometimes left the notebook with no
    kernel at all. Returns whether a run started.
    """
    from playwright.sync_api import expect

    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']:visible").first
    # any code cell queued or run ("[*]" or "[n]"): on a loaded machine the first one
    # may already be done by the time this looks
    started = notebook.locator(".jp-CodeCell .jp-InputPrompt").filter(has_text=STARTED).first
    dialog = page.locator(".jp-Dialog")
    deadline = time.monotonic() + timeout_ms / 1000
    runs = 0
    while runs < tries and time.monotonic() < deadline:
        left = max(1_000, int(1000 * (deadline - time.monotonic())))
        expect(idle.or_(accept).first).to_be_attached(timeout=left)
        if accept.is_visible():
            # Answering a dialog is not a try: only a Run All that started nothing is.
            try:
                text = dialog.first.inner_text(timeout=5_000)
            except Exception:  # it closed meanwhile
                continue
            print("run_all_cells: answering a Lab dialog:", " ".join(text.split())[:200])
            accept.click()
            continue
        runs += 1
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            expect(started).to_be_attached(timeout=60_000)
            return True
        except AssertionError:
            continue  # no cell started: a dialog took the command; answer it, run again
    return False


# The last time on the x axis of the figure titled ``prefix...`` (any renderer with a
# ``ts`` column; ms since the epoch), or null when it has no data yet.
LAST_TS_FN = """
  const lastTs = (prefix) => {
    const docs = (window.Bokeh && window.Bokeh.documents) || [];
    let last = null;
    for (const d of docs) for (const m of (d.all_models || [])) {
      const t = m && m.title;
      if (!t || typeof t.text !== "string" || !t.text.startsWith(prefix)) continue;
      for (const r of (m.renderers || [])) {
        const s = r && r.data_source && r.data_source.data;
        const ts = s && (s.get ? s.get("ts") : s.ts);
        if (ts && ts.length) {
          const v = Number(ts[ts.length - 1]);
          if (last === null || v > last) last = v;
        }
      }
    }
    return last;
  };
"""
LAST_TS_JS = "(prefix) => {" + LAST_TS_FN + " return lastTs(prefix); }"

#: The figures titled ``a...`` and ``b...`` both have data and end at the same time.
SAME_END_JS = "([a, b]) => {" + LAST_TS_FN + """
  const x = lastTs(a), y = lastTs(b);
  return x !== null && x === y;
}"""


def login(page, url: str, name: str, password: str) -> None:
    """Log in through the served workbench's login form (``serve --users``).

    ``url`` is the server's URL (with or without the printed token, which is
    dropped: this is how someone without it logs in). Returns once the form
    has been submitted and the browser left the login page.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    page.goto(f"{parts.scheme}://{parts.netloc}/")
    page.wait_for_url("**/login*")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)
