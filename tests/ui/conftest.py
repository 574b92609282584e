"""Fixtures of the UI tests: a demo investigation, the real server, Chromium, JupyterLab.

Warnings are errors (pyproject). Two deprecation warnings under pandas 3 come from
dependencies, not from the workbench, and are filtered here exactly
(stack-notes.md): bokeh's ``ColumnDataSource`` calls ``reset_index(inplace=True)``
on every DataFrame it is given, and dowhy's regression estimator passes ``copy=``
to ``astype``. Nothing else is ignored.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from workbench.ui.harness import (free_port, start_process, stop_process, write_lab_notebooks,
                                  write_lab_settings)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "sample_data" / "demo"
CHROMIUM = "/usr/bin/chromium"
#: Chromium flags that work headless on these machines (stack-notes.md).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

DEPENDENCY_WARNINGS = [
    # bokeh.models.sources: ColumnDataSource._data_from_df -> reset_index(inplace=True)
    "ignore:The inplace keyword in DataFrame.reset_index is deprecated"
    ":pandas.errors.Pandas4Warning",
    # dowhy.causal_estimators.regression_estimator: features.astype(float, copy=False)
    "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts JupyterLab (still part of `make test`)")
    config.addinivalue_line("markers", "browser: drives Chromium through Playwright")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for w in DEPENDENCY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(w))


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file()


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """A store of the demo passport of its own (never the repository's)."""
    return tmp_path_factory.mktemp("ui-store") / "store.duckdb"


@pytest.fixture(scope="session")
def demo_inv(demo_store):
    """The demo investigation (no artifact), shared by the tests that only read it."""
    from workbench.investigation import investigate

    return investigate(DEMO, metric="conversion_rate", db=demo_store, artifact_dir=None)


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, launched with the flags of stack-notes.md.

    Our own fixture rather than pytest-playwright's: the plugin's ``base_url``
    fixture (pytest-base-url) trips a pytest 9 deprecation warning, which is an
    error here, and these tests need nothing else from it.
    """
    if not chromium_available():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A fresh page (own context); a screenshot is kept when the test fails."""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a loaded 2-core machine renders slowly
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        out = Path(os.environ.get("WORKBENCH_UI_ARTIFACTS", "/tmp")) / f"{request.node.name}.png"
        try:
            pg.screenshot(path=str(out), full_page=True)
            print(f"screenshot of the failure: {out}")
        except Exception:
            pass
    ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """``python -m workbench.ui.app`` (the code of ``workbench serve``) on a free port.

    Its store and library are temporary; the URL is the one the server prints.
    """
    tmp = tmp_path_factory.mktemp("ui-server")
    port = free_port()
    env = {**os.environ, "WORKBENCH_INVESTIGATIONS": str(tmp / "library"),
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db", str(tmp / "store.duckdb"),
           "--port", str(port), "--metric", "conversion_rate"]
    proc, url = start_process(cmd, env=env, ready=re.compile(r"serving .* at (http://\S+)"),
                       log=tmp / "server.log", timeout=90)
    yield {"url": url, "library": tmp / "library", "log": tmp / "server.log", "proc": proc}
    stop_process(proc)
    # The page never shows a traceback; the server log must not hold one either, apart
    # from Tornado/Bokeh noise when a test closes its page with messages in flight.
    bad = app_tracebacks((tmp / "server.log").read_text())
    assert not bad, "\n\n".join(bad)[-6000:]


#: Last lines of tracebacks that only mean "the browser tab went away".
_DISCONNECT = ("WebSocketClosedError", "StreamClosedError", "AssertionError")


def app_tracebacks(log: str) -> list[str]:
    """Tracebacks in a server log that are not a closed connection."""
    out = []
    for block in re.split(r"\n(?=Traceback \(most recent call last\))", log)[1:]:
        lines = [x for x in block.splitlines() if x.strip()]
        tb = []
        for x in lines:
            tb.append(x)
            if not x.startswith((" ", "Traceback", "During handling", "The above")):
                break  # the exception line ends the traceback
        last = tb[-1] if tb else ""
        disconnect = any(last.startswith(("tornado.websocket." + d, "tornado.iostream." + d, d))
                         for d in _DISCONNECT) and "/workbench/" not in "\n".join(tb)
        if not disconnect:
            out.append("\n".join(tb))
    return out


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory):
    """JupyterLab on a free port, serving copies of the UI notebooks.

    ``quickstart.ipynb`` gets its parameters injected the papermill way (the demo
    passport by absolute path, a temporary store and library), so the copy runs
    from Lab's temporary root and the repository is left as it was;
    ``ui_workbench.ipynb`` reads the same from the environment.
    """
    tmp = tmp_path_factory.mktemp("ui-lab")
    root = tmp / "root"
    root.mkdir()
    write_lab_notebooks(root, tmp, DEMO, REPO)
    port = free_port()
    write_lab_settings(tmp / "lab-settings")
    env = {**os.environ, "WORKBENCH_PASSPORT": str(DEMO), "WORKBENCH_DB": str(tmp / "store.duckdb"),
           "WORKBENCH_INVESTIGATIONS": str(tmp / "library"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
           "JUPYTER_DATA_DIR": str(tmp / "jupyter-data"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "PYTHONUNBUFFERED": "1"}
    lab = Path(sys.executable).with_name("jupyter-lab")
    cmd = [str(lab), "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
           "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
           f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True"]
    proc, url = start_process(cmd, env=env, ready=re.compile(r"(http://127\.0\.0\.1:\d+/lab)"),
                       log=tmp / "lab.log", timeout=120, cwd=root)
    yield {"url": url, "root": root, "log": tmp / "lab.log", "library": tmp / "library"}
    stop_process(proc)
