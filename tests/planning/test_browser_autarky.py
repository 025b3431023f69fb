"""Weeks of autarky in headless Chromium: the network planner finds the page under Network, reads the
depot's region with its limiting material in the table and the chart (SUP-STOCK)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import browser_login
from tests.planning.test_resilience import make_region

pytestmark = pytest.mark.browser

#: A screenshot to look at: /tmp/e2e-autarky/autarky.png.
SHOTS = Path(tempfile.gettempdir()) / "e2e-autarky"


def test_the_planner_reads_the_weeks_of_autarky_of_each_region(live_server, tx_db, page: Page):
    """SUP-STOCK: Network → Weeks of autarky shows the Iberian depot's region (21.0 weeks, the syringe
    limiting) and Munich alone, with the bar chart."""
    SHOTS.mkdir(exist_ok=True)
    make_region()
    browser_login(page, live_server.url, "planner")
    page.locator("summary", has_text="Network").click()
    page.get_by_role("link", name="Weeks of autarky").click()
    row = page.locator("#region-DEPOT-IB")
    expect(row).to_contain_text("21.0")
    expect(row).to_contain_text("SYR-5ML")
    expect(page.locator("#region-MUC")).to_contain_text("no demand")
    expect(page.locator("figure svg")).to_be_visible()
    page.screenshot(path=str(SHOTS / "autarky.png"), full_page=True)
