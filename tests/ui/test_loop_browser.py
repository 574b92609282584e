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
import time

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


#: ids of the launch form's models in the token holder's document (another session's)
LAUNCH_IDS_JS = """() => {
  const ids = [];
  for (const d of window.Bokeh.documents)
    for (const m of d.all_models)
      if (/^(Launch test)$/.test(String(m.label ?? ""))) ids.push(m.id);
  return ids;
}"""
#: the main timeline's test-arm curves: legend label -> points drawn
ARMS_JS = """() => {
  const out = {};
  for (const d of window.Bokeh.documents)
    for (const m of d.all_models) {
      const label = m.label && m.label.value;
      if (typeof label === "string" && label.startsWith("test arm"))
        for (const r of m.renderers || []) {
          const d = r.data_source && r.data_source.data;
          const x = d instanceof Map ? d.get("ts") : (d ? d["ts"] : null);
          out[label] = x ? x.length : -1;
        }
    }
  return out;
}"""
#: From the viewer's page, as an attacker would: (1) button clicks sent on the page's
#: websocket for model ids its document does not hold (a fabricated one and the token
#: holder's real launch button), (2) a "Launch test" button added to its own document
#: and clicked. Returns the added button's id.
FORGE_LAUNCH_JS = """(ids) => {
  const doc = window.Bokeh.documents[0];
  const {serialize} = window.Bokeh.require("core/serialization/index");
  const {MessageSentEvent} = window.Bokeh.require("document/events");
  const {ButtonClick} = window.Bokeh.require("core/bokeh_events");
  for (const id of ids) {
    const click = {[serialize]: () => ({type: "event", name: "button_click",
      values: {type: "map", entries: [["model", {type: "ref", id}]]}})};
    doc._trigger_on_change(new MessageSentEvent(doc, "bokeh_event", click));
  }
  const Button = window.Bokeh.Models.get("Button");
  const forged = new Button({label: "Launch test"});
  doc.add_root(forged);
  const ev = new ButtonClick();
  ev.origin = forged;
  doc.event_manager.send_event(ev);
  return forged.id;
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
    info = {"url": url, "library": tmp / "library", "log": tmp / "server.log"}
    yield info
    stop_process(proc)
    # Bokeh logs the messages it refused (the viewer test's forged clicks) with their
    # traceback: those, naming a forged id, are expected; nothing else is
    forged = tuple(f"can't resolve reference '{i}'" for i in info.get("forged", ()))
    bad = [b for b in app_tracebacks((tmp / "server.log").read_text())
           if not (forged and b.rstrip().endswith(forged))]
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

    server["launch_ids"] = page.evaluate(LAUNCH_IDS_JS)  # for the viewer's forged events
    _launch(page, "chg-0431")
    status = act.locator(".wb-loop-status")
    # the hypothesis board moves hour by hour while the test runs: watched on its tab
    page.get_by_text("Hypotheses", exact=True).first.click()
    badge = page.locator(".wb-hypotheses .wb-card").first.get_by_text(
        re.compile(r"test at 50%: \w+ · hour \d+"))
    hours, deadline = [], time.monotonic() + LOOP / 1000
    while time.monotonic() < deadline:
        texts = badge.all_inner_texts()
        m = re.search(r"test at 50%: (\w+) · hour (\d+) · confidence", texts[0]) \
            if texts else None
        if m and (not hours or hours[-1] != (m.group(1), int(m.group(2)))):
            hours.append((m.group(1), int(m.group(2))))
        if hours and hours[-1][0] == "confirmed":
            break
        page.wait_for_timeout(200)
    page.screenshot(path=str(server["library"].parent / "loop-board.png"), full_page=True)
    page.get_by_text("Act", exact=True).first.click()
    expect(status).to_contain_text("confirmed after", timeout=LOOP)
    decided = int(re.search(r"confirmed after (\d+) h", act.get_by_text(
        re.compile(r"confirmed after \d+ h")).first.inner_text()).group(1))
    assert hours and hours[-1] == ("confirmed", decided), hours
    # seen during the test, not only at its end (hours are seconds apart here)
    assert len({h for _, h in hours}) >= min(decided, 2), hours
    # the main timeline draws both arms, one point per hour of the test
    arms = page.evaluate(ARMS_JS)
    assert set(arms) == {"test arm: kept", "test arm: reverted"} and \
        all(n == decided for n in arms.values()), arms
    page.screenshot(path=str(server["library"].parent / "loop-board-timeline.png"),
                    full_page=True)
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

    # Forged from the page itself, as an attacker would: clicks for model ids this
    # document does not hold (fabricated; the token holder's real launch button when the
    # test above ran first) and a launch button added to its own document, then clicked.
    flags = server["library"] / "loop" / "flags.json"
    flags_before = flags.read_bytes() if flags.exists() else None
    log = server["library"] / "audit.jsonl"
    before = len(read_audit(log))
    ids = ["p999999", *server.get("launch_ids", [])]
    server["forged"] = ids
    forged_id = page.evaluate(FORGE_LAUNCH_JS, ids)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = [r for r in read_audit(log)[before:] if r.actor == VIEWER[0]]
        if len([r for r in new if r.action == "access.denied"]) >= len(ids) + 1:
            break
        time.sleep(0.5)
    denied = sorted((r.details["action"], r.details.get("model") or r.details.get("refused"))
                    for r in new if r.action == "access.denied")
    assert denied == sorted([("add_model", "Button")]
                            + [("patch", "UnknownReferenceError")] * len(ids)), denied
    assert not [r for r in new if r.action.startswith(("action.", "experiment."))]
    assert (flags.read_bytes() if flags.exists() else None) == flags_before
    page.wait_for_function(  # the server removed the added button (and told the page)
        "id => !window.Bokeh.documents[0].roots().some(r => r.id === id)", arg=forged_id,
        timeout=30_000)

    # And forged at the handler: the served session's state is built by
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
