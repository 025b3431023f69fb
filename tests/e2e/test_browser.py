"""Browser tests in headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import browser_login as _login
from tests.conftest import PASSWORD
from tests.jobs.run import run_queued_jobs

pytestmark = pytest.mark.browser


def test_qa_filters_the_audit_trail_and_exports_it(live_server, tx_db, page: Page):
    """A11-9 P11-10b: QA browses the trail by site and event type and downloads it as CSV."""
    base = live_server.url
    _login(page, base, "qa")
    page.get_by_role("navigation", name="Main").locator("summary", has_text="Audit").click()  # the Audit menu
    page.get_by_role("link", name="Audit trail").first.click()
    expect(page.get_by_role("heading", name=re.compile("Audit trail"))).to_be_visible()
    page.get_by_label("Site (chain)").fill("LIS")
    page.get_by_label("Event type").select_option("accounts.role_granted")
    page.get_by_role("button", name="Show events").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("LIS#")
    assert "chain=LIS" in page.url  # the filter is in the address, so it can be shared
    page.get_by_role("button", name="CSV").click()  # a job makes the file; its page follows the job
    expect(page.locator("#job-status")).to_have_text("Queued")
    run_queued_jobs()  # the worker's part, in this process
    with page.expect_download() as download:  # the page polled itself to Done and offers the file
        page.get_by_role("button", name=re.compile("^Download pocare-audit-")).click()
    assert download.value.suggested_filename.endswith(".csv")
    page.goto(f"{base}/audit/?event_type=ledger.trail_exported")
    expect(page.locator("table tbody tr").first).to_contain_text("Montserrat Puig")


def test_a_site_manager_signs_a_review_with_the_continuous_session_rule(live_server, tx_db, page: Page):
    """P11-200 P11-50: first signature asks user id and password, a wrong password is refused,
    the signed review shows the signature; the next signature asks for the password only."""
    base = live_server.url
    _login(page, base, "manager.mad")
    page.goto(f"{base}/audit/reviews/")
    page.get_by_label(re.compile("What you reviewed")).fill("Weekly review of the Madrid trail")
    page.get_by_label("User id").fill("manager.mad")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign review").click()
    expect(page.get_by_text("Wrong user id or password.")).to_be_visible()
    page.get_by_label("User id").fill("manager.mad")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label(re.compile("What you reviewed")).fill("Weekly review of the Madrid trail")
    page.get_by_role("button", name="Sign review").click()
    expect(page.get_by_text("Lucía Navarro").first).to_be_visible()
    expect(page.get_by_text("Reviewed").first).to_be_visible()
    expect(page.get_by_text(re.compile("valid", re.I)).first).to_be_visible()
    # Something new happens at the site, then the second review asks only for the password.
    from pocare.accounts.models import User
    from pocare.network.models import Site
    from tests.ledger.helpers import write_events

    write_events(User.objects.get(username="manager.mad"), Site.objects.get(code="MAD"), 1)
    page.goto(f"{base}/audit/reviews/")
    expect(page.get_by_label("User id")).to_have_count(0)


def test_an_inspector_reads_but_is_offered_no_signing(live_server, tx_db, page: Page):
    """A11-IAM: read-only inspectors see the trail and verify it; no forms that write."""
    base = live_server.url
    _login(page, base, "inspector")
    expect(page.get_by_text(re.compile("read-only", re.I)).first).to_be_visible()
    from pocare.accounts.models import User
    from pocare.network.models import Site
    from tests.ledger.helpers import write_events

    write_events(User.objects.get(username="manager.mad"), Site.objects.get(code="MAD"), 1)
    page.goto(f"{base}/audit/reviews/")
    expect(page.get_by_role("button", name="Sign review")).to_have_count(0)


def test_an_operator_sees_only_their_own_site(live_server, tx_db, page: Page):
    """P11-10g: a site person's network page lists their site alone, and no audit trail link."""
    base = live_server.url
    _login(page, base, "operator.lis")
    page.goto(f"{base}/network/")
    expect(page.get_by_text("Lisbon POCare site").first).to_be_visible()
    expect(page.get_by_text("Madrid POCare site")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)
