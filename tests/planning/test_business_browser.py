"""The business case in a browser (COST-BATCH): the planner finds it under Network, changes the volume with the
form and sees the chart, the break-even and the inputs marked estimate."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from pocare.demo import costs as demo_costs
from tests.browser import browser_login
from tests.costs import helpers as c
from tests.manufacturing import helpers as h

pytestmark = pytest.mark.browser


def test_the_planner_reads_the_business_case_from_the_navigation(live_server, tx_db, page: Page):
    """COST-BATCH: Network → Business case; the form recomputes the case for another volume."""
    v1 = h.world()
    c.approved(demo_costs.content([v1]))
    browser_login(page, live_server.url, "planner")
    page.goto(f"{live_server.url}/planning/business-case/")
    expect(page.get_by_role("heading", name="Business case of a site")).to_be_visible()
    page.get_by_label("Patients a year, up to").fill("80")
    page.get_by_role("button", name="Compute").click()
    expect(page.locator("figure.chart svg")).to_be_visible()
    expect(page.get_by_text("Break-even: from")).to_be_visible()
    expect(page.locator('nav a[href="/planning/business-case/"]').first).to_be_attached()  # under Network
    shot = os.environ.get("POCARE_SCREENSHOT")
    if shot:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.screenshot(path=shot, full_page=True)
