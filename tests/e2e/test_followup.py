"""Browser test of the follow-up (PAT-LTFU, PAT-GRADE): a physician records the day-7 visit and a CRS,
and the page shows the grade computed from the inputs, with its reasons."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser import browser_login

pytestmark = pytest.mark.browser


def test_a_physician_records_day_7_and_a_crs_graded_3(live_server, tx_db, page: Page):
    """PAT-GRADE PAT-LTFU: day-7 visit recorded; fever 39.2 °C with one vasopressor shows CRS grade 3 with
    its reasons, first as the preview while typing, then on the timeline."""
    from tests.patients.matrix import followup_referral

    referral = followup_referral("MAD")  # infused a week ago, the schedule planned by the service
    base, pseudonym = live_server.url, referral.patient.pseudonym
    browser_login(page, base, "physician.mad")
    page.goto(f"{base}/patients/{pseudonym}/follow-up/")
    expect(page.get_by_role("heading", name=f"Follow-up of {pseudonym}")).to_be_visible()
    page.locator("tr", has_text="Day 7").get_by_role("link", name="Record").click()
    done_at = timezone.localtime(timezone.now() - dt.timedelta(hours=2), referral.patient.treating_site.tz)
    page.get_by_label("Done at").fill(done_at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label(re.compile("^Disease response")).select_option("PR")
    page.get_by_label(re.compile("^Reason")).first.fill("Day-7 visit")
    page.get_by_role("button", name="Record the visit").click()
    expect(page.get_by_text("Day 7 recorded.")).to_be_visible()
    expect(page.locator("tr", has_text="Day 7")).to_contain_text("Done")

    page.get_by_role("button", name="Record an adverse event").click()
    page.get_by_label("Event", exact=True).select_option("crs")
    day7 = referral.visits.get(label="Day 7")
    page.get_by_label(re.compile("^Found at the visit")).select_option(str(day7.pk))
    page.get_by_label("Onset").fill((timezone.localdate() - dt.timedelta(days=2)).isoformat())
    page.get_by_label(re.compile("^Highest temperature")).fill("39.2")
    page.get_by_label("Hypotension", exact=False).first.check()
    page.get_by_label(re.compile("^Vasopressors")).fill("1")
    page.get_by_label(re.compile("^Vasopressors")).press("Tab")
    expect(page.locator("#grade-preview [data-grade]")).to_have_text("3")  # computed while typing (htmx)
    page.get_by_label(re.compile("^Reason")).fill("CRS on day 5")
    page.get_by_role("button", name="Record the adverse event").click()
    event = page.locator("article.adverse-event").first
    expect(event).to_contain_text("CRS grade 3")
    expect(event).to_contain_text("Temperature 39.2 °C is a fever")
    expect(event).to_contain_text("Hypotension requiring one vasopressor is grade 3")
