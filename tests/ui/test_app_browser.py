"""The served workbench, driven in Chromium as a user would.

One real server (``python -m workbench.ui.app``, the code behind ``workbench
serve``) on a free 127.0.0.1 port for the session; a fresh page per test. The
assertions read what the page shows (text, the Bokeh timeline's title and data in
``window.Bokeh.documents``); the confirm test also reads the record stored in
the library. Every wait is on a condition (Playwright's ``expect`` or
``wait_for_function``), with timeouts sized for a loaded 2-core machine.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from ._browser import LAST_TS_JS, METRIC, WAIT, WATCH_EVIDENCE_JS, timeline, wait_timeline

pytestmark = pytest.mark.browser

TOP_CAUSE = "chg-0431"  # sample_data/demo/truth.json: flag new_checkout_flow on iOS 5.2
LOAD = 180_000  # ms: the first page of a fresh server waits for the investigation
REPLAY = 240_000  # ms: replay steps are whole investigations, computed in the background


def open_app(page: Page, server) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server["url"])
    expect(page.locator(".wb-hypotheses").get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible(
        timeout=LOAD)
    wait_timeline(page, "everything", exact=True, timeout=LOAD)
    # The shortcut listener is registered in the same call that draws its hint.
    expect(page.locator(".wb-keys-hint")).to_be_visible()
    page._wb_errors = errors  # checked by the tests at the end


def no_page_errors(page: Page) -> None:
    assert not getattr(page, "_wb_errors", []), page._wb_errors
    assert page.get_by_text("Traceback").count() == 0
    expect(page.locator(".wb-alert")).to_be_hidden()


def test_demo_shows_the_top_cause(page: Page, server):
    open_app(page, server)
    cards = page.locator(".wb-hypotheses")
    expect(cards.get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible()
    expect(cards.get_by_text("new_checkout_flow").first).to_be_visible()
    verdict = page.locator(".wb-verdict")
    expect(verdict).to_contain_text("verdict change")
    expect(verdict).to_contain_text(f"top cause {TOP_CAUSE} flag new_checkout_flow")
    # The timeline of the whole metric, with data.
    shown = timeline(page)
    assert shown["title"] == "conversion_rate · everything" and shown["data"], shown
    no_page_errors(page)


def test_sessions_are_built_off_the_event_loop(page: Page, server):
    """Once the investigation is ready a page's session is built on a worker thread
    (the server's event loop goes on serving the other pages), and it works."""
    open_app(page, server)  # the investigation is ready once this page shows it
    open_app(page, server)
    assert "session built on workbench-build" in server["log"].read_text()
    assert timeline(page)["title"] == "conversion_rate · everything"
    no_page_errors(page)


def test_click_a_slice_drills_down(page: Page, server):
    open_app(page, server)
    before = timeline(page)["data"]
    page.locator(".wb-slices").get_by_role("button", name="platform=ios", exact=True).click()
    after = wait_timeline(page, "platform=ios", changed_from=before)
    assert after["title"] == "conversion_rate · platform=ios", after
    expect(page.locator(".wb-crumbs")).to_contain_text("everything › platform=ios")
    # The list now ranks the slices inside iOS.
    expect(page.locator(".wb-slices").get_by_role(
        "button", name="platform=ios, app_version=5.2", exact=True)).to_be_visible()
    # Up again: the whole metric, its own data back.
    page.get_by_role("button", name="⬆ Up (u)").click()
    back = wait_timeline(page, "everything", changed_from=after["data"], exact=True)
    assert back["data"] == before
    no_page_errors(page)


def test_confirm_a_hypothesis_records_it(page: Page, server):
    from workbench.investigation import library as versions

    open_app(page, server)
    selected_is(page, f"#1 {TOP_CAUSE}")
    # One action row acts on the selected card (cards have no buttons of their own).
    row = page.locator(".wb-card-actions")
    pick = row.locator("select")
    expect(pick).to_have_value(f"#1 {TOP_CAUSE}")
    pick.select_option(index=1)  # the mouse's way to another card (j/k the keyboard's)
    expect(page.locator(".wb-hypotheses .wb-selected")).to_contain_text("#2 ", timeout=WAIT)
    pick.select_option(index=0)
    selected_is(page, f"#1 {TOP_CAUSE}")
    expect(page.locator(".wb-hypotheses .wb-card").get_by_role("button")).to_have_count(0)
    row.get_by_placeholder("note (optional)").fill("payment step broken on iOS 5.2")
    row.get_by_role("button", name="Confirm").click()
    decisions = page.locator(".wb-decisions")
    expect(decisions.get_by_text(TOP_CAUSE)).to_be_visible(timeout=WAIT)
    expect(decisions.get_by_text("confirmed")).to_be_visible()
    expect(decisions).to_contain_text("library inv-")
    # Recorded on the investigation: the library holds it, its journal the decision.
    (entry,) = versions.list_investigations(server["library"])
    assert entry.latest.top_cause == TOP_CAUSE
    decided = [e for e in versions.journal(server["library"], entry.investigation_id)
               if e.kind == "decision"]
    assert any(e.details.get("hypothesis") == TOP_CAUSE
               and e.details.get("status") == "confirmed"
               and e.details.get("note") == "payment step broken on iOS 5.2"
               for e in decided), decided
    no_page_errors(page)


def selected_is(page: Page, text: str) -> None:
    """Exactly one hypothesis card is selected, and it is the one showing ``text``."""
    selected = page.locator(".wb-hypotheses .wb-selected")
    expect(selected.filter(has_text=text)).to_have_count(1)
    expect(selected).to_have_count(1)


def test_keyboard_shortcuts(page: Page, server):
    open_app(page, server)
    selected_is(page, f"#1 {TOP_CAUSE}")
    page.keyboard.press("j")  # next hypothesis
    selected_is(page, "#2 ")
    page.keyboard.press("k")  # previous hypothesis
    selected_is(page, f"#1 {TOP_CAUSE}")
    before = timeline(page)["data"]
    page.keyboard.press("d")  # drill down into the top slice
    down = wait_timeline(page, "platform=ios", changed_from=before)
    page.keyboard.press("u")  # and back up
    wait_timeline(page, "everything", changed_from=down["data"], exact=True)
    # "/" focuses the search; letters typed there are text, not shortcuts (the query
    # has a k and a u: the selection and the timeline must not move).
    page.keyboard.press("j")
    selected_is(page, "#2 ")
    page.keyboard.press("/")
    box = page.get_by_placeholder("Search changes")
    expect(box).to_be_focused()
    page.keyboard.type("new_checkout_flow ios")
    expect(box).to_have_value("new_checkout_flow ios")
    expect(page.locator(".wb-search-results").get_by_text(TOP_CAUSE)).to_be_visible()
    selected_is(page, "#2 ")
    assert timeline(page)["title"] == "conversion_rate · everything"
    no_page_errors(page)


STEP = re.compile(r"step (\d)/6")


def test_replay_steps_and_plays(page: Page, server):
    open_app(page, server)
    label = page.locator(".wb-replay-label")
    expect(label).to_contain_text("now:")
    # One step: the analysis as it stood six hours before the onset, re-run on the
    # data cut there. Nothing had diverged yet, so no change is blamed.
    page.get_by_role("button", name="Step ▶").click()
    expect(label).to_contain_text("step 1/6", timeout=REPLAY)
    first = wait_timeline(page, "as of 2026-11-18 08:00", timeout=REPLAY)
    expect(label).to_contain_text("verdict none", timeout=REPLAY)
    expect(page.locator(".wb-hypotheses").get_by_text("No candidate change")).to_be_visible()
    # Play: time moves on by itself, and the timeline shows each later moment's data.
    page.get_by_role("button", name="▶ Play").click()
    expect(page.get_by_role("button", name="⏸ Pause")).to_be_visible()
    page.wait_for_function(
        """() => {
          const docs = (window.Bokeh && window.Bokeh.documents) || [];
          for (const d of docs) for (const m of (d.all_models || [])) {
            const t = m && m.title && m.title.text;
            if (typeof t === "string" && t.startsWith("conversion_rate ·") &&
                t.includes("as of") && !t.includes("as of 2026-11-18 08:00")) return true;
          }
          return false;
        }""", timeout=REPLAY)
    # Pause with the keyboard (space): it stops wherever it is, or it had already
    # played to the end and stopped at "now" on its own.
    page.keyboard.press(" ")
    expect(page.get_by_role("button", name="▶ Play")).to_be_visible()
    # The label is a Markdown pane: its text is in its shadow root.
    text = label.evaluate("e => (e.shadowRoot || e).textContent").strip()
    m = STEP.search(text)
    if m:
        assert int(m.group(1)) >= 2, text
        later = timeline(page)
        assert "as of" in later["title"] and later["data"] != first["data"], later
    else:
        assert text.startswith("now"), text
    # Now: the live investigation again.
    page.get_by_role("button", name="Now").click()
    expect(label).to_contain_text("now:")
    wait_timeline(page, "everything", exact=True)  # no "as of": all the data
    expect(page.locator(".wb-hypotheses").get_by_text(f"#1 {TOP_CAUSE}")).to_be_visible()
    no_page_errors(page)


def test_back_to_now_after_a_replay_shows_all_the_data_in_the_evidence(page: Page, server):
    """After a replay, "Now" brings every view back to the whole data at once.

    The evidence tab's observed-vs-expected plot is derived from the shown moment
    like the timeline; the page must never show the live timeline beside an
    evidence plot still cut at the replay time (each animation frame is checked,
    from the first step to the end), and the status line must not keep naming
    the replay step.
    """
    open_app(page, server)
    cf = "Observed vs expected"
    # Hidden tabs render when first opened: open the evidence once, so its plot is in
    # the page for the whole replay.
    page.get_by_text("Evidence", exact=True).first.click()
    live_end = page.evaluate(LAST_TS_JS, f"{METRIC} · everything")
    page.wait_for_function(f"(p) => ({LAST_TS_JS})(p) === {live_end}", arg=cf, timeout=WAIT)
    page.evaluate(WATCH_EVIDENCE_JS, METRIC)
    label = page.locator(".wb-replay-label")
    status = page.locator(".wb-status")
    # Three steps: one hour after the onset, the data cut there.
    for i in range(1, 4):
        page.get_by_role("button", name="Step ▶").click()
        expect(label).to_contain_text(f"step {i}/6", timeout=REPLAY)
    wait_timeline(page, "as of 2026-11-18 15:00", timeout=REPLAY)
    expect(label).not_to_contain_text("computing", timeout=REPLAY)
    expect(status).to_contain_text("Replay: 2026-11-18 15:00")
    # The evidence follows the replay (it is cut at the replay time too).
    page.wait_for_function(f"(p) => {{ const v = ({LAST_TS_JS})(p); "
                           f"return v !== null && v < {live_end}; }}", arg=cf, timeout=REPLAY)
    page.get_by_role("button", name="Now").click()
    expect(label).to_contain_text("now:")
    wait_timeline(page, "everything", exact=True)
    page.get_by_text("Evidence", exact=True).first.click()
    expect(page.locator(".wb-effect")).to_contain_text(f"Effect of {TOP_CAUSE}")
    page.wait_for_function(f"(p) => ({LAST_TS_JS})(p) === {live_end}", arg=cf, timeout=WAIT)
    # Two more frames painted after the plot got there (the sampler ran in between).
    frames = page.evaluate("() => window.__wbFrames")
    page.wait_for_function(f"() => window.__wbFrames >= {frames + 2}")
    mismatch = page.evaluate("() => { cancelAnimationFrame(window.__wbRaf); "
                             "return window.__wbMismatch; }")
    assert not mismatch, (f"{len(mismatch)} frame(s) showed the live timeline (ending "
                          f"{mismatch[0][0]}) beside evidence ending {mismatch[0][1]}")
    # The status line under the header says where the page is, not the last step.
    expect(status).not_to_contain_text("Replay:")
    no_page_errors(page)
