"""The Verify action in Chromium against the real served demo (issue 17).

Verify on hypothesis #1 (flag new_checkout_flow on iOS 5.2) shows DoWhy's
VERIFIED verdict with its refuters, and the Evidence tab draws the
counterfactual band of iOS 5.2 (observed, without the change, 95% band); on #2
(a global change: no unexposed traffic) it says why it cannot be tested. A
screenshot of each is kept in ``$WORKBENCH_UI_ARTIFACTS`` (default /tmp).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ._browser import WAIT
from .test_app_browser import TOP_CAUSE, no_page_errors, open_app, selected_is

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("WORKBENCH_UI_ARTIFACTS", "/tmp"))
SECOND = "chg-0423"  # sample_data/demo: a deploy on web in IN, 7 h before the onset

# The counterfactual figure: its title and how many points its dashed line has.
_CF_JS = """() => {
  for (const d of (window.Bokeh && window.Bokeh.documents) || []) {
    for (const m of (d.all_models || [])) {
      const t = m && m.title;
      if (!t || typeof t.text !== "string" || !t.text.startsWith("Observed vs")) continue;
      for (const r of (m.renderers || [])) {
        const s = r && r.data_source && r.data_source.data;
        const cf = s && (s.get ? s.get("expected") : s.expected);
        if (cf && cf.length) return {title: t.text, n: cf.length};
      }
    }
  }
  return null;
}"""


def test_verify_shows_dowhy_and_the_counterfactual_band(page: Page, server):
    open_app(page, server)
    selected_is(page, f"#1 {TOP_CAUSE}")
    page.locator(".wb-card-actions").get_by_role("button", name="Verify").click()
    page.get_by_text("Evidence", exact=True).first.click()
    box = page.locator(".wb-verification")
    expect(box).to_contain_text(f"DoWhy verification of {TOP_CAUSE}: VERIFIED", timeout=WAIT)
    for refuter in ("placebo treatment", "random common cause", "data subset",
                    "placebo in time", "timing"):
        expect(box).to_contain_text(refuter)
    expect(box).to_contain_text("Without the change in app_version=5.2, platform=ios")
    page.wait_for_function(
        f"() => {{ const f = ({_CF_JS})(); return f && f.title.startsWith("
        f"'Observed vs without the change ({TOP_CAUSE})') && f.n > 24; }}", timeout=WAIT)
    # the seasonal-baseline label is gone where DoWhy's counterfactual is drawn
    expect(page.locator(".wb-effect")).not_to_contain_text("not a causal counterfactual")
    page.screenshot(path=str(SHOTS / "verify_top_cause.png"), full_page=True)

    # #2, a scoped deploy hours earlier: DoWhy finds no effect of its own in its scope
    # (a change to all traffic, which DoWhy cannot test, no longer ranks in the first
    # five cards on the demo; its UNTESTABLE answer: test_verify_action.py)
    page.get_by_text("Hypotheses", exact=True).first.click()
    page.keyboard.press("j")  # next hypothesis
    selected_is(page, f"#2 {SECOND}")
    page.get_by_text("Evidence", exact=True).first.click()
    page.locator(".wb-verify-evidence").get_by_role("button").click()
    expect(box).to_contain_text(f"DoWhy verification of {SECOND}: REFUTED", timeout=WAIT)
    expect(box).to_contain_text("no effect distinguishable from zero in the scope")
    page.screenshot(path=str(SHOTS / "verify_refuted.png"), full_page=True)
    no_page_errors(page)


def test_show_query_on_slices_quality_findings_and_the_verification(page: Page, server):
    """Issue 17 item 6 in the served page (the token holder, who may see raw data): the
    slice shown, the data-quality finding and the verification each have a "Show query"
    holding their SQL, collapsed until clicked."""
    open_app(page, server)
    label = "platform=ios, app_version=5.2"  # the demo's top localized slice
    page.locator("select").filter(has=page.locator(f"option[value='{label}']")).first \
        .select_option(label=label)
    box = page.locator(".wb-slice-query")
    expect(box).to_contain_text("Show query (observed and baseline", timeout=WAIT)
    sql = box.locator("pre.wb-sql").first
    expect(sql).to_be_hidden()  # collapsed
    box.get_by_text("Show query").click()
    expect(sql).to_be_visible()
    expect(sql).to_contain_text("obs_num")
    expect(sql).to_contain_text("'5.2'")
    page.get_by_text("Evidence", exact=True).first.click()
    quality = page.locator(".wb-quality")
    expect(quality).to_contain_text("srm (info): experiment checkout_button_color")
    quality.get_by_text("Show query").click()
    expect(quality.locator("pre.wb-sql")).to_contain_text("'checkout_button_color'")
    page.get_by_text("Hypotheses", exact=True).first.click()
    selected_is(page, f"#1 {TOP_CAUSE}")
    page.locator(".wb-card-actions").get_by_role("button", name="Verify").click()
    page.get_by_text("Evidence", exact=True).first.click()
    ver = page.locator(".wb-verification")
    expect(ver).to_contain_text(f"DoWhy verification of {TOP_CAUSE}: VERIFIED", timeout=WAIT)
    ver.get_by_text("Show query").click()
    expect(ver).to_contain_text("the unit table DoWhy was given")
    expect(ver.locator("pre.wb-sql").first).to_contain_text("AS exposed")
    expect(ver.locator("pre.wb-sql")).to_have_count(2)  # and the counterfactual's series
    ver.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "show_query.png"), full_page=True)
    no_page_errors(page)
