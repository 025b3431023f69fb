"""What every browser test does first: log a persona in through the real login page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD


def browser_login(page: Page, base: str, username: str) -> None:
    """Log ``username`` in (after dropping any earlier session) and land on the home page."""
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.get_by_label("User id").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    expect(page).to_have_url(f"{base}/")
