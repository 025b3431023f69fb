"""First expiry, first out on the step's page in headless Chromium: the lot that expires first is selected,
the reason field appears only once the operator chooses another lot, and the step is recorded with it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import MaterialUse
from tests.browser import browser_login
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.supply import helpers as s
from tests.supply.test_step import COUNT_STEP, at_count_step

pytestmark = pytest.mark.browser


def test_the_reason_is_asked_only_for_a_lot_other_than_the_first_to_expire(live_server, tx_db, page: Page):
    """SUP-STOCK: the proposed lot is selected and no reason is asked; choosing the later lot shows "Why
    not lot …?"; signing without it is refused naming the lot to take; with it the step is recorded and the
    batch record shows the reason."""
    batch = at_count_step()
    soon, later = s.received(5, expiry_days=60), s.received(5, expiry_days=200)
    h.into_window(batch, mfg.step_definition(batch, COUNT_STEP))
    browser_login(page, live_server.url, "operator.mad")
    page.goto(f"{live_server.url}/manufacturing/batches/{batch.reference}/steps/{COUNT_STEP}/")
    lot = page.get_by_label(re.compile("^Sterile syringe 5 mL"))
    expect(lot).to_have_value(str(soon.pk))
    reason = page.get_by_label(f"Why not lot {soon.lot_number}?")
    expect(reason).to_be_hidden()
    lot.select_option(str(later.pk))
    expect(reason).to_be_visible()
    for parameter, value in h.good_values(mfg.step_definition(batch, COUNT_STEP)).items():
        page.locator(f"#id_v_{parameter}").fill(str(value))
    user_id = page.get_by_label("User id")
    if user_id.count():
        user_id.fill("operator.mad")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Record and sign").click()
    expect(page.get_by_text(re.compile(f"lot {soon.lot_number} \\(expires")).first).to_be_visible()
    expect(page.get_by_label(f"Why not lot {soon.lot_number}?")).to_be_visible()  # a refused form keeps it open
    assert not MaterialUse.objects.filter(lot=later).exists()
    page.get_by_label(f"Why not lot {soon.lot_number}?").fill("Pouch of the first lot torn")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Record and sign").click()
    expect(page).to_have_url(re.compile(f"/manufacturing/batches/{batch.reference}/"))
    expect(page.locator(f"#step-{COUNT_STEP}")).to_contain_text("not the first to expire: Pouch of the first lot torn")
    assert MaterialUse.objects.get(lot=later).fefo_reason == "Pouch of the first lot torn"
