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


def lab_api(lab_url: str, path: str, body: dict | None = None):
    """A call to the REST API of the Lab at ``lab_url`` (``.../lab``): GET, or POST ``body``."""
    import urllib.request

    base = lab_url.rsplit("/lab", 1)[0]
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def notebook_kernel(lab_url: str, name: str) -> str | None:
    """The id of the kernel of the session Lab's server holds for notebook ``name``."""
    ids = [s["kernel"]["id"] for s in lab_api(lab_url, "/api/sessions")
           if s.get("path") == name and s.get("kernel")]
    return ids[0] if len(ids) == 1 else None


def open_notebook(page, lab_url: str, name: str, *, timeout_ms: int = 240_000):
    """Open notebook ``name`` in Lab with its kernel connected and idle; the notebook panel
    and the kernel's id.

    The kernel session is created through the server's REST API
    (``POST /api/sessions`` with the notebook's path and its kernelspec's name) before
    the page opens, so Lab attaches to it and never starts one of its own. Then this
    waits until the notebook's toolbar names that kernel (Lab's session context holds
    it) and its status is idle.

    Why: the execution indicator reads "idle" before the notebook has any kernel
    (while Lab is still asking its server for sessions), and a Run All at that moment
    found no kernel, so Lab both started one for the notebook and asked "Select
    Kernel"; answering the dialog replaced the kernel under the page (the flaky Lab
    tests of issues 17 and 19). Lab's server log and its ``/api/sessions`` calls show
    this order: idle indicator, Run All, ``POST /api/sessions``, the dialog.
    """
    from playwright.sync_api import expect

    nb = lab_api(lab_url, f"/api/contents/{name}?content=1")["content"]
    kernel = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("name") or "python3"
    spec = lab_api(lab_url, "/api/kernelspecs")["kernelspecs"][kernel]["spec"]
    kid = lab_api(lab_url, "/api/sessions", {"path": name, "type": "notebook", "name": name,
                                              "kernel": {"name": kernel}})["kernel"]["id"]
    page.goto(f"{lab_url}/tree/{name}?reset")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=timeout_ms)
    expect(notebook.locator(".jp-KernelName")).to_have_text(spec["display_name"],
                                                             timeout=timeout_ms)
    expect(notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
           ).to_be_attached(timeout=timeout_ms)
    no_dialog(page)
    return notebook, kid


def no_dialog(page) -> None:
    """Fail with its text if Lab shows a dialog (none is expected in these runs)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        raise AssertionError("Lab asked: " + " ".join(dialog.first.inner_text().split())[:300])


def run_all_cells(page, notebook, *, timeout_ms: int = 240_000) -> bool:
    """Run > Run All Cells in a notebook opened by :func:`open_notebook`, once; whether
    a code cell started (its prompt shows ``[*]`` or ``[n]``) within ``timeout_ms``.

    No dialog is answered: with the kernel attached before the command, Lab has
    nothing to ask, and a dialog means the notebook lost its kernel (an error,
    raised with the dialog's text).
    """
    from playwright.sync_api import expect

    no_dialog(page)
    # any code cell queued or run: on a loaded machine the first may be done already
    started = notebook.locator(".jp-CodeCell .jp-InputPrompt").filter(has_text=STARTED).first
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    try:
        expect(started.or_(page.locator(".jp-Dialog")).first).to_be_attached(
            timeout=timeout_ms)
    except AssertionError:
        return False
    no_dialog(page)
    return True


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
