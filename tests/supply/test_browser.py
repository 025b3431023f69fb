"""The recall in headless Chromium: Control Site QA traces a lot from the stock of a site to the batch that
used it, recalls it from the trace page (signed, after the confirmation), and the QP, in a second browser,
finds the batch held on the release queue and on its checklist, naming the recall."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from pocare.manufacturing.models import MaterialUse
from pocare.supply.models import Recall
from tests.browser import browser_login
from tests.conftest import PASSWORD
from tests.release import helpers as rh

pytestmark = pytest.mark.browser

#: Screenshots of each step, to look at: /tmp/e2e-recall/*.png.
SHOTS = Path(tempfile.gettempdir()) / "e2e-recall"


def test_qa_recalls_a_lot_from_its_trace_and_the_qp_sees_the_batch_held(
        live_server, tx_db, page: Page, browser: Browser):
    """SUP-RECALL ATMP-REL ATMP-TRACE: a recall from QA's page puts the batch on hold and the QP sees it on
    the checklist."""
    SHOTS.mkdir(exist_ok=True)
    batch = rh.ready_batch("MAD")
    lot = MaterialUse.objects.filter(step__batch=batch).select_related("lot").order_by("pk").first().lot
    base = live_server.url

    browser_login(page, base, "qa")
    page.locator("summary", has_text="Production").click()
    page.get_by_role("link", name="Trace and recall").click()
    page.get_by_label("Material").select_option(lot.material_code)
    page.get_by_label("Lot number").fill(lot.lot_number)
    page.get_by_role("button", name="Trace").click()
    reached = page.locator("tr", has=page.get_by_role("link", name=batch.reference))
    expect(reached).to_contain_text(batch.order.recipient_id)
    expect(reached).to_contain_text("awaiting certification")
    page.screenshot(path=str(SHOTS / "1-trace.png"), full_page=True)

    form = page.locator("form", has=page.get_by_role("button", name="Sign and recall"))
    form.get_by_label("Why the lot is recalled").fill("Supplier notice SN-2026-17: endotoxin out of specification")
    if form.get_by_label("User id").count():
        form.get_by_label("User id").fill("qa")
    form.get_by_label("Password").fill(PASSWORD)
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    form.get_by_role("button", name="Sign and recall").click()
    recall = Recall.objects.get()
    expect(page.get_by_role("heading", level=1)).to_contain_text(recall.reference)
    assert dialogs and "Recall" in dialogs[0]
    expect(page.locator("body")).to_contain_text("awaiting certification, held")
    page.screenshot(path=str(SHOTS / "2-recall.png"), full_page=True)

    qp_context = browser.new_context()
    qp = qp_context.new_page()
    browser_login(qp, base, "qp")
    qp.get_by_role("link", name="Release").first.click()
    row = qp.locator("tr", has=qp.get_by_role("link", name=batch.reference))
    expect(row).to_contain_text(recall.reference)
    row.get_by_role("link", name=batch.reference).click()
    holds = qp.locator("#line-holds")
    expect(holds).to_have_attribute("data-state", "fail")
    expect(holds).to_contain_text(re.compile(f"{recall.reference}.*endotoxin"))
    qp.screenshot(path=str(SHOTS / "3-checklist.png"), full_page=True)
    qp_context.close()
