"""The release walk in headless Chromium: the QP opens the queue and sees a batch blocked by an open
deviation; QA, in a second browser, assesses the deviation's impact as negligible with a signature
on the quality app's deviation page; the QP certifies (with the confirmation) and downloads the
certificate."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from pocare.quality import services as quality
from tests.browser import browser_login as _login
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.release import helpers as rh

pytestmark = pytest.mark.browser


def test_the_qp_sees_the_blocking_deviation_qa_assesses_it_and_the_qp_certifies(
        live_server, tx_db, page: Page, browser: Browser):
    """ATMP-REL POC-7 P11-50: review by exception — the QP sees at once what stops the batch, QA
    resolves it under signature, and only then the QP certifies and prints the certificate."""
    batch = rh.completed_batch("MAD")
    deviation = quality.deviation_raise(actor=h.user("operator.mad"), site=batch.site, title="Label smudged at fill",
                                        description="The final bag label is legible but smudged.", batch=batch)
    manager = h.user("manager.mad")
    quality.deviation_classify(actor=manager, deviation=deviation, severity=1, occurrence=1, detectability=1,
                               rationale="Cosmetic.", notify=False)
    quality.investigation_record(actor=manager, deviation=deviation, findings="Printer ribbon worn.",
                                 root_cause="Worn ribbon", root_cause_category="machine", reason="investigated")
    rh.review_exceptions(batch)
    rh.qc_review(batch)
    base = live_server.url

    _login(page, base, "qp")
    page.get_by_role("link", name="Release").first.click()
    row = page.locator("tr", has=page.get_by_role("link", name=batch.reference))
    expect(row).to_contain_text(deviation.reference)
    expect(row).to_contain_text("Deviations closed or of negligible impact")

    qa_context = browser.new_context()
    qa = qa_context.new_page()
    _login(qa, base, "qa")
    qa.goto(f"{base}/quality/deviations/{deviation.reference}/")
    impact = qa.locator("#impact")
    impact.locator("summary").click()
    # the deviation page has several signed forms with same-named fields: address this form's own
    impact.locator("select[name=impact]").select_option("negligible")
    impact.locator("textarea[name=rationale]").fill("Cosmetic label issue; identity verified by scan; no impact.")
    if impact.locator("input[name=username]").count():
        impact.locator("input[name=username]").fill("qa")
    impact.locator("input[name=password]").fill(PASSWORD)
    impact.get_by_role("button", name="Assess and sign").click()
    expect(qa.get_by_text("Impact assessed and signed.")).to_be_visible()
    qa_context.close()

    page.reload()
    row = page.locator("tr", has=page.get_by_role("link", name=batch.reference))
    expect(row).to_contain_text("nothing blocks")
    row.get_by_role("link", name=batch.reference).click()
    expect(page.locator("#line-deviations")).to_have_attribute("data-state", "pass")
    form = page.locator("#decision-form")
    form.get_by_label("Decision", exact=True).select_option("certify")
    form.get_by_label("Reason", exact=True).fill("Every condition met; deviation of negligible impact.")
    form.get_by_label("User id").fill("qp")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label(re.compile("decision is final")).check()
    page.once("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Sign the decision").click()
    expect(page.locator("#stage")).to_have_text("Certified for release")
    expect(page.locator("#stage2")).to_contain_text("Released")

    with page.expect_download() as info:
        page.locator("#certificate-link").click()
    path = info.value.path()
    with open(path, "rb") as fh:
        assert fh.read(5) == b"%PDF-"
