"""The batch record in headless Chromium: an operator executes the first steps of a started batch
through the step pages, a second person verifies the 4-eyes step in another browser, and a
critical value out of range is refused until a deviation is raised — which then shows on the
batch page and in review by exception."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import browser_login as _login
from tests.conftest import PASSWORD
from tests.manufacturing.helpers import started_batch

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/ebr-batch.png"  # noqa: S108 (a picture for people, not a secret)  # noqa: S108 - asked for by the issue, looked at by a person


def _sign(page: Page, username: str, button: str) -> None:
    """Fill the signature box (the user id only when the page asks for it) and submit."""
    user_id = page.get_by_label("User id", exact=True)
    if user_id.count():
        user_id.fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name=button).click()


def test_an_operator_records_steps_a_second_person_verifies_and_an_out_of_range_value_raises_a_deviation(
        live_server, tx_db, page: Page, browser: Browser):
    """P11-10f P11-10g ATMP-TRACE DEV-CLASS: steps through the step pages in order, second-person
    verification by another person in another browser, a critical value out of range refused
    with its value named, then recorded with a deviation that the batch page and review show."""
    from pocare.quality.models import Deviation

    batch = started_batch("MAD")
    base = live_server.url
    batch_url = f"{base}/manufacturing/batches/{batch.reference}/"

    _login(page, base, "operator.mad")
    page.goto(batch_url)
    expect(page.get_by_role("heading", name=re.compile(batch.reference))).to_be_visible()
    first = page.locator("#step-receipt-identity")
    first.get_by_role("button", name="Execute").click()
    expect(page).to_have_url(re.compile(r"/steps/receipt-identity/$"))
    # Nothing to type at the receipt: its values are read from the custody records, shown read-only.
    expect(page.locator("#derived-shipper-temperature")).to_contain_text("4.5 °C")
    expect(page.locator("#derived-din-matches")).to_contain_text("Yes")
    expect(page.get_by_label(re.compile("^Shipper temperature on arrival"))).to_have_count(0)
    _sign(page, "operator.mad", "Record and sign")
    expect(page.get_by_text(re.compile("receipt-identity recorded and signed .* awaits second-person verification")))\
        .to_be_visible()
    expect(first.get_by_text("Awaiting second-person verification", exact=False)).to_be_visible()

    # The site manager verifies in a browser of their own; the operator cannot go on meanwhile.
    manager_context = browser.new_context()
    try:
        other = manager_context.new_page()
        _login(other, base, "manager.mad")
        other.goto(batch_url)
        other.locator("#step-receipt-identity").get_by_role("button", name="Verify").click()
        expect(other.get_by_role("heading", name="Verify as second person")).to_be_visible()
        expect(other.get_by_text("Shipper temperature on arrival: 4.5")).to_be_visible()
        _sign(other, "manager.mad", "Verify and sign")
        expect(other.get_by_text("Step receipt-identity verified and signed.")).to_be_visible()
        expect(other.locator("#step-receipt-identity")).to_contain_text("verified by Lucía")
    finally:
        manager_context.close()

    # Next step: a critical value out of range (viability 65 %, range 80–100 %) is refused.
    page.goto(batch_url)
    expect(page.locator("#step-receipt-identity")).to_contain_text("Complete")
    page.locator("#step-apheresis-count").get_by_role("button", name="Execute").click()
    page.get_by_label(re.compile("^Total nucleated cells")).fill("1500")
    page.get_by_label(re.compile("^Viability")).fill("65")
    page.get_by_label(re.compile("^CD3\\+ T cells")).fill("55")
    page.get_by_label(re.compile("^Sterile syringe 5 mL")).select_option(index=1)
    _sign(page, "operator.mad", "Record and sign")
    refusal = page.get_by_text(re.compile(r"Viability = 65 % is outside the acceptable range \(80–100 %\)"))
    expect(refusal.first).to_be_visible()
    assert not Deviation.objects.filter(batch=batch).exists()

    page.get_by_label("Raise a deviation").fill("Viability 65 % at receipt after a 30-hour courier delay; "
                                                "QA informed, continuing under deviation.")
    expect(page.get_by_label(re.compile("^Viability"))).to_have_value("65")
    _sign(page, "operator.mad", "Record and sign")
    dev = Deviation.objects.get(batch=batch)
    expect(page.get_by_text(f"Deviation {dev.reference} opened")).to_be_visible()
    expect(page).to_have_url(re.compile(f"/manufacturing/batches/{batch.reference}/"))
    deviations = page.locator("#deviations")
    expect(deviations).to_contain_text(dev.reference)
    expect(deviations).to_contain_text("Critical parameter out of range at apheresis-count: Viability")
    expect(page.locator("#step-apheresis-count")).to_contain_text(dev.reference)
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.get_by_role("link", name="Review by exception").click()
    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(page.get_by_text(re.compile(f"apheresis-count: Viability = 65.*deviation {dev.reference}"))).to_be_visible()
    expect(page.locator(".review-list li", has_text=f"{dev.reference} (")).to_contain_text("Deviation")


def test_an_operator_records_a_step_outside_its_time_window_and_meets_its_deviation(
        live_server, tx_db, page: Page) -> None:
    """P11-10f DEV-CLASS: the step page warns before signing that the wash of day 3–5 is too early
    on day 1; recorded anyway (not a critical step), it opens a deviation that the batch page marks
    on the step and review by exception lists with the window and the elapsed time."""
    from pocare.manufacturing import services
    from pocare.quality.models import Deviation
    from tests.manufacturing import helpers as h

    batch = started_batch("MAD")
    while services.next_step(batch)[1]["id"] != "culture-wash":
        h.do_step(batch)
    base = live_server.url
    _login(page, base, "operator.mad")  # after the steps: the clock waited a day for the transduction
    page.goto(f"{base}/manufacturing/batches/{batch.reference}/steps/culture-wash/")
    expect(page.locator("#window-state")).to_contain_text("too early for its time window, 2 d 12 h–5 d 12 h after "
                                                          "step activation")
    page.get_by_label(re.compile("^Washes completed")).fill("2")
    page.get_by_label(re.compile("^TexMACS GMP medium")).select_option(index=1)
    _sign(page, "operator.mad", "Record and sign")
    dev = Deviation.objects.get(batch=batch, step_id="culture-wash")
    expect(page.get_by_text(f"Deviation {dev.reference} opened")).to_be_visible()
    expect(page.locator("#step-culture-wash")).to_contain_text(f"outside time window · {dev.reference}")
    page.goto(f"{base}/manufacturing/batches/{batch.reference}/review/")
    expect(page.get_by_text(re.compile(r"culture-wash performed \d+\.\d h after step activation"))).to_be_visible()
