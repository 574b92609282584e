"""A view plug-in's tab appears in the served app (``workbench serve``) and renders.

The workbench-views-inputs extension is installed in the venv (``make venv``);
the served session is the local administrator, so both its tabs are there.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .test_app_browser import no_page_errors, open_app

pytestmark = pytest.mark.browser


def test_the_inputs_tab_of_an_extension_shows_the_passport_files(page: Page, server):
    open_app(page, server)
    page.get_by_text("Inputs", exact=True).first.click()
    table = page.locator(".wb-plugin-inputs")
    expect(table).to_contain_text("events.parquet")
    expect(table).to_contain_text("changes")
    expect(page.get_by_text("Export", exact=True).first).to_be_visible()
    no_page_errors(page)
