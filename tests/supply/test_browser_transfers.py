"""A transfer in headless Chromium: Madrid's QC analyst sends stock from the Iberian depot to Lisbon (after
the confirmation); Lisbon's QC analyst uploads the logger's file and receives it; the lot at Lisbon is
released and the reorder page links to a purchase request."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from pocare.supply.models import LocationKind, Transfer, TransferStatus
from tests.browser import browser_login
from tests.supply import helpers as s

pytestmark = pytest.mark.browser

#: Screenshots of each step, to look at: /tmp/e2e-transfer/*.png.
SHOTS = Path(tempfile.gettempdir()) / "e2e-transfer"


def test_a_transfer_is_dispatched_uploaded_and_received_in_the_browser(live_server, tx_db, page: Page):
    """SUP-STOCK ATMP-TRACE: dispatch (confirmed), logger upload and receipt through the pages."""
    SHOTS.mkdir(exist_ok=True)
    depot = s.store("MAD", "DEPOT", kind=LocationKind.DEPOT, serves=("MAD", "LIS"))
    lot = s.received(10, location=depot)
    s.storage(lot.material_code, low="15", high="25")  # the logger's limits: the material's storage range
    lis = s.store("LIS")
    base = live_server.url

    browser_login(page, base, "qc.mad")
    page.locator("summary", has_text="Production").click()
    page.get_by_role("link", name="Transfers").click()
    form = page.locator("form", has=page.get_by_role("button", name="Dispatch"))
    form.get_by_label("From").select_option(str(depot.pk))
    form.get_by_label("Lot").select_option(str(lot.pk))
    form.get_by_label("To").select_option(str(lis.pk))
    form.get_by_label("Quantity").fill("4")
    form.get_by_label("Data logger").fill("TT4-0001")
    form.get_by_label("Carrier").fill("Transportes Ibéricos, R. Alves")
    form.get_by_label("Seal number").fill("IB-000042")
    page.screenshot(path=str(SHOTS / "1-dispatch.png"), full_page=True)
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    form.get_by_role("button", name="Dispatch").click()
    sent = Transfer.objects.get()
    expect(page.get_by_role("heading", level=1)).to_contain_text(sent.reference)
    assert dialogs and "in transit" in dialogs[0]

    lisbon = page.context.browser.new_context()  # type: ignore[union-attr]
    other = lisbon.new_page()
    browser_login(other, base, "qc.lis")
    other.goto(f"{base}/supply/transfers/{sent.reference}/")
    start = timezone.now() - dt.timedelta(minutes=40)
    csv = "timestamp,temperature_c\n" + "".join(
        f"{start + dt.timedelta(minutes=10 * i):%Y-%m-%dT%H:%M:%SZ},{19 + i}\n" for i in range(4))
    csv_path = SHOTS / "logger.csv"
    csv_path.write_text(csv)
    other.get_by_label("Logger readings (CSV)").set_input_files(str(csv_path))
    other.get_by_role("button", name="Upload").click()
    expect(other.locator("body")).to_contain_text("4 reading(s) stored")
    receive = other.locator("form", has=other.get_by_role("button", name="Receive"))
    receive.get_by_label("Handed over by").fill("R. Alves")
    other.once("dialog", lambda dialog: dialog.accept())
    receive.get_by_role("button", name="Receive").click()
    expect(other.locator("body")).to_contain_text("is released")
    other.screenshot(path=str(SHOTS / "2-received.png"), full_page=True)
    sent.refresh_from_db()
    assert sent.status == TransferStatus.RECEIVED and sent.destination_lot.status == "released"
    other.goto(f"{base}/supply/purchases/")
    other.screenshot(path=str(SHOTS / "3-purchases.png"), full_page=True)
    lisbon.close()
