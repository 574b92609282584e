"""Who may see and do what, in Chromium against the real server (issue 15).

The server (``python -m workbench.ui.app``, the code of ``workbench serve``)
serves a passport with an ``account`` dimension marked ``pii`` whose values are
canaries, with a users file holding a viewer. The viewer logs in through the
form and does what would bring account values to the page (search for them,
compare accounts); every websocket frame, HTTP response and the final DOM is
kept and searched for the canaries. The token holder (admin) does the same, and
there the canaries are found: the search is able to find what it looks for.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.governance._canary import CANARIES, canary_passport
from workbench.governance.auth import UserFile
from workbench.governance.policy import Role
from workbench.ui.harness import LAST_TS_JS, free_port, login, start_process, stop_process

pytestmark = pytest.mark.browser

TOP_CAUSE = "chg-0431"
LOAD = 240_000  # ms: the viewer's masked copy is ingested and investigated on first use
VIEWER = ("vera", "viewer-pass-1")
SHOTS = Path(os.environ.get("WORKBENCH_UI_ARTIFACTS", "/tmp"))


def _server(tmp, *extra):
    passport = canary_passport(tmp / "passport")
    users = tmp / "users.json"
    UserFile.add(users, VIEWER[0], Role.VIEWER, VIEWER[1])
    cmd = [sys.executable, "-m", "workbench.ui.app", str(passport), "--db",
           str(tmp / "store" / "store.duckdb"), "--library", str(tmp / "library"),
           "--port", str(free_port()), "--metric", "conversion_rate", "--users", str(users),
           *extra]
    proc, url = start_process(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              ready=re.compile(r"serving .* at (http://\S+)"),
                              log=tmp / "server.log", timeout=120)
    return proc, {"url": url, "library": tmp / "library", "log": tmp / "server.log",
                  "passport": passport, "tmp": tmp}


@pytest.fixture(scope="module")
def gov_server(tmp_path_factory):
    proc, info = _server(tmp_path_factory.mktemp("gov-server"))
    yield info
    stop_process(proc)


class Seen:
    """Everything the browser received: websocket frames and HTTP bodies."""

    def __init__(self, page: Page):
        self.parts: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("response", self._response)

    def _frame(self, payload):
        self.parts.append(payload if isinstance(payload, str)
                          else payload.decode("utf-8", "replace"))

    def _response(self, response):
        try:
            self.parts.append(response.text())
        except Exception:  # redirects and aborted requests have no body
            pass

    def canaries(self, page: Page) -> list[str]:
        text = "\n".join(self.parts) + page.content()
        return [c for c in CANARIES if c in text]


def _look_for_accounts(page: Page) -> None:
    """Search for accounts and compare two of them: account values reach the page."""
    expect(page.locator(".wb-hypotheses").get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible(
        timeout=LOAD)
    box = page.get_by_placeholder("Search changes")
    box.fill("account")
    expect(page.locator(".wb-search-results").get_by_text("account=").first).to_be_visible()
    page.locator(".bk-tab").filter(has_text=re.compile(r"^Compare$")).click()
    compare = page.locator("select:visible").filter(has=page.locator("option[value=account]"))
    compare.first.select_option("account")
    expect(page.locator("select option[value*='@example.test'], select option[value^='pii-']")
           .first).to_be_attached()
    # the two compared accounts' timelines arrive (their queries ran on locked-down readers)
    page.wait_for_function(LAST_TS_JS, arg="A: ", timeout=LOAD)
    page.wait_for_function(LAST_TS_JS, arg="B: ", timeout=LOAD)
    expect(page.get_by_text("Something went wrong")).to_have_count(0)


def test_a_viewer_sees_no_pii_and_no_decision_control(browser, gov_server):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    seen = Seen(page)
    page.goto(gov_server["url"].split("?")[0])  # no token: the login page
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.screenshot(path=str(SHOTS / "gov-login.png"))
    login(page, gov_server["url"], *VIEWER)
    _look_for_accounts(page)
    expect(page.locator("select option[value^='pii-']").first).to_be_attached()
    expect(page.locator(".wb-identity").get_by_text("vera")).to_be_visible()
    expect(page.locator(".wb-identity")).to_contain_text("(viewer)")
    expect(page.get_by_role("button", name="Confirm")).to_have_count(0)
    expect(page.get_by_role("button", name="Refute")).to_have_count(0)
    page.locator(".bk-tab").filter(has_text=re.compile(r"^Hypotheses$")).click()
    page.screenshot(path=str(SHOTS / "gov-viewer.png"), full_page=True)
    assert seen.canaries(page) == []
    ctx.close()
    # nothing the viewer's session wrote holds one either (library, server log)
    written = "".join(p.read_text(errors="replace") for p in gov_server["library"].rglob("*")
                      if p.is_file()) + gov_server["log"].read_text()
    assert not [c for c in CANARIES if c in written]
    assert "login.succeeded" in (gov_server["library"] / "audit.jsonl").read_text()


def test_the_token_holder_sees_the_real_values(browser, gov_server):
    """The positive control: the same steps as admin find the canaries."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    seen = Seen(page)
    page.goto(gov_server["url"])
    _look_for_accounts(page)
    expect(page.get_by_role("button", name="Confirm").first).to_be_attached()
    assert len(seen.canaries(page)) >= 2
    ctx.close()


def _viewer_page(browser, url):
    """A new context logged in as the viewer, once the hypotheses are shown."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    login(page, url, *VIEWER)
    expect(page.locator(".wb-hypotheses").get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible(
        timeout=LOAD)
    return ctx, page


FORGE_JS = """() => {
  const doc = window.Bokeh.documents[0];
  const models = [...doc._all_models.values()];
  const decisions = models.filter(m => /^(Confirm|Refute)$/.test(String(m.label ?? ""))).length;
  const Button = window.Bokeh.Models.get("Button");
  const forged = new Button({label: "Confirm"});
  doc.add_root(forged);  // sent to the server as a patch of the viewer's document
  return {decisions, n: models.length, forged: forged.id};
}"""


def test_a_viewers_forged_confirm_is_refused_and_audited(browser, gov_server):
    """From the viewer's real page: its document holds no Confirm/Refute model (the
    control is not built for the role, so no event can route to the decision handler,
    which checks the role again: tests/governance/test_served_roles.py); a Confirm
    button the page adds to its document itself is removed by the server and audited
    as ``access.denied``, and nothing is decided."""
    ctx, page = _viewer_page(browser, gov_server["url"])
    out = page.evaluate(FORGE_JS)
    assert out["decisions"] == 0 and out["n"] > 50
    audit = gov_server["library"] / "audit.jsonl"
    page.wait_for_function(
        "id => !window.Bokeh.documents[0].roots().some(r => r.id === id)", arg=out["forged"],
        timeout=30_000)  # the server removed it (and the page was told)
    from workbench.governance.audit import read_audit
    recs = read_audit(audit)
    denied = [r for r in recs if r.action == "access.denied" and r.actor == VIEWER[0]]
    assert [(r.details["action"], r.details["model"], r.subject) for r in denied] == [
        ("add_model", "Button", "Confirm")]
    assert not [r for r in recs if r.action.startswith("hypothesis.")]
    assert not list(gov_server["library"].glob("inv-*"))
    expect(page.get_by_text("Something went wrong")).to_have_count(0)
    ctx.close()


SMALL_K = 20_000  # sessions: the demo's ios 5.0 cell (about 17,800 in a period) is small

HEAT_JS = """() => {
  const doc = window.Bokeh.documents[0];
  for (const m of doc._all_models.values()) {
    const d = m.data;
    if (d && d.x && d.y && d.share && !d.line_color) {
      const col = k => Array.from(d[k] instanceof Map ? [] : d[k]);
      return {x: col("x"), y: col("y"), share: col("share").map(v => Number.isFinite(v) ? v : null)};
    }
  }
  return null;
}"""


def test_no_small_cell_reaches_a_viewers_heatmap(browser, tmp_path_factory):
    """With k above the demo's thinnest platform x version cell, the viewer's heatmap
    (its Bokeh document, as the browser holds it) has no share for that cell, nor for
    the complementary cells withheld with it (a withheld cell is not alone in its row or
    column); the cells it does show carry their true share."""
    from workbench.investigation import investigate
    from workbench.ui.data import InvestigationData

    proc, srv = _server(tmp_path_factory.mktemp("gov-small"), "--suppress-k", str(SMALL_K))
    try:
        ctx, page = _viewer_page(browser, srv["url"])
        page.locator(".bk-tab").filter(has_text=re.compile(r"^Heatmap$")).click()
        page.wait_for_function(f"({HEAT_JS})() !== null", timeout=LOAD)
        heat = page.evaluate(HEAT_JS)
        ctx.close()
    finally:
        stop_process(proc)
    shown = {(x, y): v for x, y, v in zip(heat["x"], heat["y"], heat["share"])}
    inv = investigate(srv["passport"], metric="conversion_rate",
                      db=srv["tmp"] / "check.duckdb", artifact_dir=None)
    data = InvestigationData(inv, passport_dir=str(srv["passport"]))
    truth = data.heatmap({}, "platform", "app_version")
    cells = set(zip(truth["platform"], truth["app_version"]))
    assert cells <= set(shown)  # HoloViews fills the rest of the grid with empty cells
    assert all(shown[c] is None for c in set(shown) - cells)
    small = truth[(truth["count"] >= 1) & (truth["count"] < SMALL_K)]
    assert len(small) >= 1
    assert all(shown[(x, y)] is None for x, y in zip(small["platform"], small["app_version"]))
    hidden = {c for c in cells if shown[c] is None}
    assert len(hidden) > len(small)  # complementary cells went with it
    # in every row and column of the heatmap, a withheld cell is never alone (the
    # margins are released as ranked rows, or withheld with one cell at least)
    for i in (0, 1):
        for v in {c[i] for c in hidden}:
            group = [c for c in cells if c[i] == v and truth.set_index(
                ["platform", "app_version"]).loc[c, "count"] > 0]
            assert len(group) == 1 or sum(c in hidden for c in group) >= 2 or \
                len([c for c in group if c not in hidden]) == 0
    # what is released is the true value
    true_share = truth.set_index(["platform", "app_version"])["share"]
    for c in cells - hidden:
        assert shown[c] == pytest.approx(true_share[c], rel=1e-6)


#: sessions: above the demo's top cause's scope (ios 5.2, about 172,000 sessions in a
#: period), so that cause's scope is a withheld cell for the viewer
SCOPE_K = 200_000

DOC_JSON_JS = """() => (window.Bokeh ? window.Bokeh.documents : []).map(d => {
  try { return JSON.stringify(d.to_json(false)); }
  catch (e) { return [...d.all_models].map(m => String(m.text ?? "")).join("\\n"); }
}).join("\\n")"""


# the admin's words are built in-process from views.py, which uses Panel 1.x widget
# arguments (``button_type=``) that Panel 1.9 announces will go in 2.0
@pytest.mark.filterwarnings(
    "ignore:.* is deprecated and will be removed in version 2.0:PendingDeprecationWarning")
def test_a_viewer_reads_no_number_of_a_withheld_scope(browser, tmp_path_factory):
    """Small-cell suppression of the words: with the top cause's scope withheld, the
    viewer's page (every websocket frame, HTTP body, the DOM and the Bokeh documents)
    holds none of the numbers the investigation says about that scope (its effect and
    interval, t, its shares of the divergence and the traffic, its impact), while the
    same investigation's words hold them for a role with the grant."""
    from workbench._format import pct
    from workbench.investigation import investigate
    from workbench.ui.data import InvestigationData
    from workbench.ui.views import CausalView, HypothesisBoard, NarrativeView
    from workbench.ui.state import WorkbenchState

    proc, srv = _server(tmp_path_factory.mktemp("gov-words"), "--suppress-k", str(SCOPE_K))
    try:
        ctx, page = _viewer_page(browser, srv["url"])
        seen = Seen(page)
        page.reload()
        expect(page.locator(".wb-hypotheses").get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible(
            timeout=LOAD)
        expect(page.locator(".wb-hypotheses")).to_contain_text("withheld: fewer than")
        for tab in ("Story", "Evidence"):
            page.locator(".bk-tab").filter(has_text=re.compile(f"^{tab}$")).click()
            page.wait_for_timeout(3000)
        page.screenshot(path=str(SHOTS / "gov_viewer_withheld_scope.png"), full_page=True)
        text = "\n".join(seen.parts) + page.content() + page.evaluate(DOC_JSON_JS)
        ctx.close()
    finally:
        stop_process(proc)
    inv = investigate(srv["passport"], metric="conversion_rate",
                      db=srv["tmp"] / "check.duckdb", artifact_dir=None)
    data = InvestigationData(inv, passport_dir=str(srv["passport"]))
    top = data.causes[0]
    assert top["change_id"] == TOP_CAUSE and data._count(dict(top["scope"])) < SCOPE_K
    e = top["effect"]
    secrets = {pct(e[x], "+.1%") for x in ("estimate", "ci_low", "ci_high")}
    secrets |= {f"t = {e['t_stat']:.1f}", f"{data.impact(dict(top['scope']))['delta']:+,.0f}",
                f"{pct(top['scope_share'], '.0%')} of the divergence"}
    # the positive control: an admin's state over the same answer says them
    admin = WorkbenchState.from_data(data, library=str(srv["tmp"] / "admin-lib"))
    words = [NarrativeView(state=admin)._story(), CausalView(state=admin)._summary()]
    words += [p["more"] for p in HypothesisBoard(state=admin)._card_parts[:1]]
    said = {s for s in secrets if s in "\n".join(words)}
    assert len(said) >= 4, said
    assert not {s for s in secrets if s in text}, {s for s in secrets if s in text}
