"""The closed loop in Chromium on the demo, served with authentication on (issue 16).

The token holder (the printed URL; admin) launches a rollback test of the top
hypothesis and watches it confirmed; the second hypothesis is refuted and next
steps proposed; the audit log holds intent and outcome of both. A viewer logged in
through the form sees the "Act" tab without any launch control, and a forged
launch of theirs is denied and audited (see the viewer test for where it is forged).
"""
from __future__ import annotations

import os
import re
import sys

import pytest
from playwright.sync_api import Page, expect

from workbench.governance.audit import read_audit, verify_audit
from workbench.governance.auth import UserFile
from workbench.governance.policy import Identity, Role
from workbench.ui.harness import free_port, login, start_process, stop_process
from workbench.ui.loop import LoopState, LoopView
from workbench.ui.state import WorkbenchState

from .conftest import DEMO, app_tracebacks

pytestmark = pytest.mark.browser

LOAD = 180_000   # ms: the first page of a fresh server waits for the investigation
LOOP = 240_000   # ms: a test ingests one batch per simulated hour on a loaded machine
VIEWER = ("vera", "viewer-pass-1")

#: Models of the page's Bokeh documents that could start a launch (a button or a
#: select of the launch form): their labels/titles, for the viewer's document.
LAUNCH_MODELS_JS = """() => {
  const found = [];
  for (const d of (window.Bokeh && window.Bokeh.documents) || [])
    for (const m of (d.all_models || [])) {
      const label = m && (m.label ?? m.title);
      if (typeof label === "string" && /^(Launch test|Hypothesis|Template)$/.test(label))
        found.push(label);
    }
  return found;
}"""
DOC_MODELS_JS = """() => {
  let n = 0;
  for (const d of (window.Bokeh && window.Bokeh.documents) || []) n += d.all_models.size;
  return n;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m workbench.ui.app`` (``workbench serve``) on the demo with a users file
    holding a viewer; the printed URL carries the admin's token."""
    tmp = tmp_path_factory.mktemp("loop-server")
    users = tmp / "users.json"
    UserFile.add(users, VIEWER[0], Role.VIEWER, VIEWER[1])
    cmd = [sys.executable, "-m", "workbench.ui.app", str(DEMO), "--db", str(tmp / "store.duckdb"),
           "--library", str(tmp / "library"), "--port", str(free_port()),
           "--metric", "conversion_rate", "--users", str(users)]
    proc, url = start_process(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              ready=re.compile(r"serving .* at (http://\S+)"),
                              log=tmp / "server.log", timeout=90)
    assert "token=" in url  # auth is on: the printed URL carries the token
    yield {"url": url, "library": tmp / "library", "log": tmp / "server.log"}
    stop_process(proc)
    bad = app_tracebacks((tmp / "server.log").read_text())
    assert not bad, "\n\n".join(bad)[-6000:]


def _launch(page: Page, cause: str) -> None:
    act = page.locator(".wb-loop")
    act.locator("select").first.select_option(cause)
    act.get_by_role("button", name="Launch test").click()


def test_launch_rollbacks_from_the_page(page: Page, server):
    page.goto(server["url"])
    expect(page.locator(".wb-hypotheses").get_by_text("#1 chg-0431")).to_be_visible(
        timeout=LOAD)
    page.get_by_text("Act", exact=True).first.click()
    act = page.locator(".wb-loop")
    expect(act.get_by_role("button", name="Launch test")).to_be_visible()
    # the positive control of the viewer test: this document holds the launch models
    assert {"Launch test", "Hypothesis", "Template"} <= set(page.evaluate(LAUNCH_MODELS_JS))

    _launch(page, "chg-0431")
    status = act.locator(".wb-loop-status")
    expect(status).to_contain_text("confirmed after", timeout=LOOP)
    expect(status).to_contain_text(re.compile(r"confirmed after [1-6] h"))  # within 6 hours
    expect(status).to_contain_text("always-valid interval +0.0")   # the effect is positive
    expect(act.locator(".wb-loop-result")).to_contain_text("real improvement")
    page.screenshot(path=str(server["library"].parent / "loop-confirmed.png"), full_page=True)

    _launch(page, "chg-0430")
    expect(status).to_contain_text("refuted after", timeout=LOOP)
    result = act.locator(".wb-loop-result")
    expect(result).to_contain_text("the divergence persists")
    expect(result).to_contain_text("Next steps")
    expect(result).to_contain_text("test the next hypothesis: chg-0431")
    page.screenshot(path=str(server["library"].parent / "loop-refuted.png"), full_page=True)
    # the board records both conclusions
    expect(page.locator(".wb-decisions")).to_contain_text("chg-0430", timeout=60_000)

    log = server["library"] / "audit.jsonl"
    recs = read_audit(log)
    done = {(r.subject, r.action, r.details.get("status")) for r in recs}
    for cid, verdict in (("chg-0431", "confirmed"), ("chg-0430", "refuted")):
        assert (cid, "action.intent", None) in done
        assert (cid, "action.outcome", "applied") in done
        assert (cid, "experiment.concluded", verdict) in done
    assert verify_audit(log).ok
    assert page.get_by_text("Traceback").count() == 0


def test_a_viewer_sees_no_launch_control_and_a_forged_launch_is_denied(
        page: Page, server, demo_inv, demo_store):
    login(page, server["url"], *VIEWER)
    expect(page.locator(".wb-identity")).to_contain_text("(viewer)")
    expect(page.locator(".wb-hypotheses").get_by_text("#1 chg-0431")).to_be_visible(
        timeout=LOAD)
    page.get_by_text("Act", exact=True).first.click()
    act = page.locator(".wb-loop")
    expect(act.locator(".wb-loop-readonly")).to_contain_text(
        "Your role (viewer) can follow tests but not launch them")
    expect(act.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("button", name="Launch test")).to_have_count(0)
    # Nothing to forge an event for: the viewer's Bokeh document (which is live: it holds
    # the Act tab's models) has no launch button and no launch form, so a widget event
    # from this page cannot name one; Bokeh refuses events for models not in the session.
    assert page.evaluate(DOC_MODELS_JS) > 0
    assert page.evaluate(LAUNCH_MODELS_JS) == []
    page.screenshot(path=str(server["library"].parent / "loop-viewer.png"), full_page=True)

    # So the launch is forged at the handler: the served session's state is built by
    # WorkbenchApp.session in the server process, out of this test's reach; the same
    # state (WorkbenchState with the identity the login gives vera) over the served
    # library gets the launch, as a forged event reaching the handler would.
    vera = Identity(VIEWER[0], Role.VIEWER, source="password")
    wb = WorkbenchState.from_investigation(demo_inv, db=str(demo_store), passport=str(DEMO),
                                           library=str(server["library"]), identity=vera)
    st = LoopState(workbench=wb)
    assert st.cause == "chg-0431" and LoopView(state=st)._button is None
    before = len(read_audit(server["library"] / "audit.jsonl"))
    st.launch()
    assert "vera (viewer) may not rollback on chg-0431" in st.error and not st.running
    new = read_audit(server["library"] / "audit.jsonl")[before:]
    assert [(r.action, r.actor, r.details.get("action")) for r in new] == [
        ("access.denied", "vera", "rollback")]
    recs = read_audit(server["library"] / "audit.jsonl")
    assert "login.succeeded" in {r.action for r in recs if r.actor == "vera"}
    assert not [r for r in recs if r.actor == "vera" and r.action.startswith("action.")]
    assert verify_audit(server["library"] / "audit.jsonl").ok
