"""The work of a day in headless Chromium: the manager finds a step to verify in the home queue and
sees its correction; the QP finds a batch in the queue, certifies it through the confirmation dialog
and reads the certificate back."""

from __future__ import annotations

import io
import re

import pdfplumber
import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser import browser_login as _login
from tests.conftest import PASSWORD
from tests.jobs.run import run_queued_jobs
from tests.release import helpers as rh
from tests.web.helpers import awaiting_verification, correct_a_value

pytestmark = pytest.mark.browser


def test_the_manager_finds_the_verification_in_the_queue_and_sees_the_correction(live_server, tx_db, page: Page):
    """CH4-9 A11-8 P11-10f: the home page says a step awaits the manager's verification (and the
    navigation counts it); its link opens the step, which shows the corrected value, the original and
    the reason; once verified, the queue no longer lists it."""
    batch, step_id = awaiting_verification("MAD", correctable=True)
    correct_a_value(batch, step_id, reason="Transcription error: read the wrong display")
    base = live_server.url
    _login(page, base, "manager.mad")
    expect(page.get_by_role("navigation", name="Main").locator(".nav-count")).to_have_text(re.compile(r"[1-9]"))
    queue = page.locator("#queue-steps_to_verify")
    expect(queue).to_contain_text("awaits your verification")
    queue.get_by_role("link", name=re.compile(f"{batch.reference} step {step_id}")).click()
    expect(page).to_have_url(re.compile(f"/steps/{step_id}/$"))
    verify = page.locator("section", has=page.get_by_role("heading", name="Verify as second person"))
    expect(verify.locator(".badge", has_text="corrected")).to_be_visible()
    expect(verify.locator(".corrections")).to_contain_text("Transcription error: read the wrong display")
    expect(verify.locator(".corrections s")).to_be_visible()  # the original, struck through, still legible
    verify.get_by_label(re.compile("User id")).fill("manager.mad")
    verify.get_by_label("Password").fill(PASSWORD)
    verify.get_by_role("button", name="Verify and sign").click()
    page.goto(f"{base}/")
    expect(page.locator("#queue-steps_to_verify")).to_have_count(0)


def test_the_qp_certifies_from_the_queue_through_the_dialog_and_reads_the_certificate(
        live_server, tx_db, page: Page):
    """ATMP-REL POC-7 P11-50 P11-10b: the batch ready for certification is in the QP's home queue;
    the decision starts unchosen; choosing Certify and signing asks for confirmation in a dialog
    (dismissed: nothing is sent; accepted: signed); the certificate downloaded as PDF names the
    batch, the decision, the QP and the reason."""
    batch = rh.ready_batch("MAD")
    base = live_server.url
    _login(page, base, "qp")
    queue = page.locator("#queue-qp_decisions")
    expect(queue).to_contain_text("ready for certification")
    queue.get_by_role("link", name=re.compile(batch.reference)).click()
    expect(page).to_have_url(re.compile(f"/release/batches/{batch.reference}/#stage2$"))
    form = page.locator("#decision-form")
    expect(form.get_by_label("Decision", exact=True)).to_have_value("")
    form.get_by_label("Decision", exact=True).select_option("certify")
    form.get_by_label("Reason", exact=True).fill("Every condition of the checklist met.")
    if form.get_by_label("User id").count():
        form.get_by_label("User id").fill("qp")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label(re.compile("decision is final")).check()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    form.get_by_role("button", name="Sign the decision").click()
    expect(page.locator("#stage")).to_have_text(re.compile("awaiting QP certification"))
    assert dialogs and batch.reference in dialogs[0]

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    form.get_by_role("button", name="Sign the decision").click()
    expect(page.locator("#stage")).to_have_text("Certified for release")
    assert len(dialogs) == 2

    with page.expect_download() as info:
        page.locator("#certificate-link").click()
    with open(info.value.path(), "rb") as fh:
        data = fh.read()
    assert data[:5] == b"%PDF-"
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        text = " ".join((p.extract_text() or "") for p in pdf.pages)
    words = " ".join(text.split())
    for expected in (batch.reference, "Jordi Ferrer", "Every condition of the checklist met.", batch.order.coi):
        assert expected in words, f"{expected!r} not in the certificate: {words[:600]}"
    assert re.search(r"certif|released", words, re.I)
    page.goto(f"{base}/")
    expect(page.locator("#queue-qp_decisions")).to_have_count(0)


def test_the_pqr_opens_with_a_year_and_each_button_answers(live_server, tx_db, page: Page):
    """Q10-PQS P11-10b: the product quality review opens with its dates filled (the last year, to
    today); Generate shows the review with a status line; an impossible period says why and that
    nothing was generated; Make the PDF queues a job whose page, once done, gives a PDF of the
    product's review."""
    import datetime as dt

    from django.utils import timezone

    batch = rh.completed_batch("MAD")
    code = batch.masterfile_version.product.code
    base = live_server.url
    _login(page, base, "qa")
    page.goto(f"{base}/analytics/review/")
    start, end = page.get_by_label(re.compile("^From")), page.get_by_label(re.compile("^To"))
    first, last = dt.date.fromisoformat(start.input_value()), dt.date.fromisoformat(end.input_value())
    assert (last - first).days in (365, 366) and last >= timezone.now().date() - dt.timedelta(days=1)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#pqr-result")).to_contain_text("Review generated")
    expect(page.locator("#pqr-result")).to_contain_text(code)
    expect(page.get_by_role("heading", name="1. Batches per site")).to_be_visible()
    page.get_by_label(re.compile("^From")).fill((last + dt.timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#pqr-result")).to_contain_text("Nothing was generated")
    expect(page.get_by_text("The period ends before it starts")).to_be_visible()
    page.get_by_label(re.compile("^From")).fill(first.isoformat())
    page.get_by_role("button", name="Make the PDF").click()  # a job makes it; its page follows the job
    expect(page.locator("#job-status")).to_have_text("Queued")
    run_queued_jobs()  # the worker's part, in this process
    with page.expect_download() as info:  # the page polled itself to Done and offers the file
        page.get_by_role("button", name=re.compile("^Download pocare-pqr-")).click()
    assert info.value.suggested_filename.endswith(".pdf")
    with pdfplumber.open(info.value.path()) as pdf:
        text = " ".join((p.extract_text() or "") for p in pdf.pages)
    assert code in text
