"""A person's hypothesis from the served page, in Chromium (issue 17 items 4 and 6).

The server (``python -m workbench.ui.app``, the code of ``workbench serve``)
serves a generated external incident (an outage outside the change log,
seeded). The token holder (admin) fills the board's "Add a hypothesis" form
with the outage's slice and window: the investigation re-runs with it and the
hypothesis is card #1; its card's "Show query" disclosure holds the SQL.
"""
from __future__ import annotations

import json
import os
import re
import sys

import pytest
from playwright.sync_api import expect

from workbench.governance.audit import read_audit
from workbench.ui.harness import free_port, start_process, stop_process

from .conftest import app_tracebacks

pytestmark = pytest.mark.browser
LOAD = 240_000  # ms: two investigations on a loaded machine


@pytest.fixture(scope="module")
def outage_server(tmp_path_factory):
    from workbench.synth import generate_incident

    tmp = tmp_path_factory.mktemp("people-server")
    path = generate_incident("external", 11, tmp / "pp")
    truth = json.loads((path / "truth.json").read_text())
    cmd = [sys.executable, "-m", "workbench.ui.app", str(path), "--db",
           str(tmp / "store.duckdb"), "--library", str(tmp / "library"), "--port",
           str(free_port()), "--metric", truth["metric"]]
    proc, url = start_process(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              ready=re.compile(r"serving .* at (http://\S+)"),
                              log=tmp / "server.log", timeout=120)
    yield {"url": url, "truth": truth, "library": tmp / "library", "log": tmp / "server.log"}
    stop_process(proc)
    assert not app_tracebacks((tmp / "server.log").read_text())


def test_an_added_hypothesis_is_tested_and_ranked_first(page, outage_server):
    truth = outage_server["truth"]
    (dim, val), = truth["slice"].items()
    page.goto(outage_server["url"])
    page.locator(".bk-tab").filter(has_text=re.compile(r"^Hypotheses$")).click()
    board = page.locator(".wb-hypotheses")
    expect(board.get_by_text("#1 ").first).to_be_visible(timeout=LOAD)
    form = page.locator(".wb-add-hypothesis")
    form.get_by_role("button", name="Add a hypothesis…").click()  # built when first opened
    form.get_by_placeholder("CDN outage in APAC").fill("ISP outage")
    form.get_by_placeholder("region=APAC (empty: everywhere)").fill(f"{dim}={val}")
    form.get_by_placeholder("2026-11-18T12:00Z").fill(truth["window"][0])
    form.get_by_placeholder("2026-11-18T14:00Z").fill(truth["window"][1])
    form.get_by_role("button", name="Add and test").click()
    first = board.locator(".wb-card").first
    expect(first).to_contain_text(re.compile(r"#1 hyp-isp-outage-\w+"), timeout=LOAD)
    expect(first).to_contain_text("ISP outage")
    first.get_by_text("Show query").click()
    expect(first.locator("pre.wb-sql").first).to_contain_text("SELECT time_bucket")
    expect(page.get_by_text("Something went wrong")).to_have_count(0)
    added = [r for r in read_audit(outage_server["library"] / "audit.jsonl")
             if r.action == "hypothesis.added"]
    assert len(added) == 1 and added[0].details["slice"] == truth["slice"]
