"""The navigation fits one row at 1280 px for every role, its menus open and lead to their pages, and
the count of what waits for the person is in it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser import browser_login as _login
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

#: One person per role, and the person with the most pages (roles at two sites). There is no
#: administrator role: Control Site QA holds the widest set of permissions.
PERSONAS = ("qa", "qp", "planner", "inspector", "manager.mad", "operator.mad", "qc.mad", "physician.mad",
            "navigator.mad", "manager.mad+physician.lis")

#: For each entry of the main navigation: its top, its height, and whether the row overflows.
MEASURE = """() => {
  const nav = document.querySelector("ul.mainnav");
  const items = [...nav.children].map(li => { const r = li.getBoundingClientRect(); return [r.top, r.height]; });
  const bar = document.querySelector(".navbar-inner");
  const parts = [...bar.children].map(el => el.getBoundingClientRect().top);
  return {items, navHeight: nav.getBoundingClientRect().height, overflow: nav.scrollWidth > nav.clientWidth,
          barParts: parts, labels: [...nav.children].map(li => li.innerText.split("\\n")[0].trim())};
}"""


def test_the_navigation_is_one_row_at_1280_px_for_every_role(live_server, tx_db, page: Page):
    """P11-10g: for each role the main navigation's entries share one top and the row is one entry
    high, nothing overflows it, and the site switcher stays on the same line."""
    from tests.personas import MULTI_ROLE, ensure_multi_role

    for username in MULTI_ROLE:
        ensure_multi_role(username, password=PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 800})
    base = live_server.url
    for username in PERSONAS:
        _login(page, base, username)
        m = page.evaluate(MEASURE)
        tops = {round(top) for top, _ in m["items"]}
        tallest = max(height for _, height in m["items"])
        assert len(tops) == 1, f"{username}: the navigation wraps into {len(tops)} rows: {m['labels']}"
        assert m["navHeight"] <= tallest + 1, f"{username}: the navigation is {m['navHeight']} px high"
        assert not m["overflow"], f"{username}: the navigation overflows: {m['labels']}"
        assert max(m["barParts"]) - min(m["barParts"]) < tallest, f"{username}: the site switcher wraps"
        assert m["labels"][0].startswith("My work")


def test_a_menu_opens_leads_to_its_page_and_marks_it(live_server, tx_db, page: Page):
    """A11-9: QA opens the Audit menu, chooses Reviews, and the menu and the entry are marked current;
    a click elsewhere closes an open menu, and Escape closes it too."""
    page.set_viewport_size({"width": 1280, "height": 800})
    base = live_server.url
    _login(page, base, "qa")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Reviews")).to_be_hidden()
    nav.locator("summary", has_text="Audit").click()
    nav.get_by_role("link", name="Reviews").click()
    expect(page).to_have_url(f"{base}/audit/reviews/")
    expect(nav.locator('summary[aria-current="true"]')).to_have_text("Audit")
    nav.locator("summary", has_text="Audit").click()
    expect(nav.locator('a[aria-current="page"]')).to_have_text("Reviews")
    page.locator("footer").click()
    expect(nav.get_by_role("link", name="Reviews")).to_be_hidden()
    nav.locator("summary", has_text="Network").click()
    expect(nav.get_by_role("link", name="Master file")).to_be_visible()
    page.keyboard.press("Escape")
    expect(nav.get_by_role("link", name="Master file")).to_be_hidden()
