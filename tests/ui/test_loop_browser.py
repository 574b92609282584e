"""The closed loop in Chromium on the demo: launch a rollback test of the top hypothesis and
watch it confirmed; the second hypothesis is refuted and next steps proposed; the audit log
holds intent and outcome of both. (A viewer's missing controls and the denied forged launch
are tested through the handler in test_loop.py; the served app gets identities with login.)"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from workbench.governance.audit import read_audit, verify_audit

pytestmark = pytest.mark.browser

LOAD = 180_000   # ms: the first page of a fresh server waits for the investigation
LOOP = 240_000   # ms: a test ingests one batch per simulated hour on a loaded machine


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
