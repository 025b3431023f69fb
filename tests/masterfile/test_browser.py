"""The change-control walk in headless Chromium: a change request raised, signed by its author,
reviewed and approved by two other people, made effective, then effective at a trained site and
not yet at another."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import browser_login as _login
from tests.conftest import PASSWORD
from tests.masterfile.helpers import V2_TEXT, authorize, effective_v1, train

pytestmark = pytest.mark.browser


def _sign(page: Page, action: str, username: str, *, confirm: bool = False) -> None:
    form = page.locator(f"#act-{action}")
    form.get_by_label("Reason").fill(f"{action} in the browser test")
    form.get_by_label("User id").fill(username)
    form.get_by_label("Password").fill(PASSWORD)
    if confirm:
        form.get_by_label(re.compile("cannot be undone")).check()
    form.get_by_role("button").click()


def test_a_change_is_raised_signed_by_three_people_and_effective_where_operators_are_trained(
        live_server, tx_db, page: Page):
    """POC-4 Q9-RISK P11-10i P11-50 POC-1: the issue's change-control walk through the pages, training included."""
    v1 = effective_v1()
    for site in ("MAD", "LIS"):
        authorize(site)
        train(v1, site)
    base = live_server.url

    _login(page, base, "qa2")
    page.get_by_role("navigation", name="Main").locator("summary", has_text="Network").click()  # the Network menu
    page.get_by_role("link", name="Master file").click()
    page.get_by_role("button", name="Raise a change request").click()
    page.get_by_label("Title").fill("Extend the expansion window to day 12")
    page.get_by_label("What changes and why").fill("Slow cultures need two more days.")
    page.get_by_label(re.compile("^Severity")).select_option("3")
    page.get_by_label(re.compile("^Probability")).select_option("2")
    page.get_by_label(re.compile("^Detectability")).select_option("2")
    page.get_by_label("MAD — Madrid POCare site").check()
    page.get_by_label("LIS — Lisbon POCare site").check()
    page.get_by_label(re.compile("Comparability evidence")).fill("Three engineering runs at day 12.")
    page.get_by_label(re.compile("Proposed master-file document")).fill(V2_TEXT.replace("unit: d, min: 8", "unit: days, min: 8"))
    page.get_by_label("Reason").fill("Product quality review")
    page.get_by_role("button", name="Raise change request").click()
    expect(page.locator(".problems")).to_contain_text("unit 'days' is not allowed")
    expect(page.locator(".problems")).to_contain_text(re.compile(r"line \d+"))
    page.get_by_label(re.compile("Proposed master-file document")).fill(V2_TEXT)
    page.get_by_role("button", name="Raise change request").click()
    expect(page.get_by_text("Medium risk").first).to_be_visible()
    page.get_by_role("button", name="Open v2 to sign").click()
    _sign(page, "submit", "qa2")
    expect(page.get_by_text("signed as authored")).to_be_visible()

    _login(page, base, "qa")
    page.goto(f"{base}/masterfile/changes/")
    page.get_by_role("link", name=re.compile("CR-")).first.click()
    page.get_by_role("button", name="Open v2 to sign").click()
    _sign(page, "review", "qa")
    expect(page.get_by_text("signed as reviewed")).to_be_visible()

    _login(page, base, "qp")
    page.goto(f"{base}/masterfile/")
    page.get_by_role("link", name="v2", exact=True).first.click()
    _sign(page, "approve", "qp", confirm=True)
    expect(page.get_by_text(re.compile("approved. Control Site QA"))).to_be_visible()

    _login(page, base, "qa")
    page.goto(f"{base}/masterfile/")
    page.get_by_role("link", name="v2", exact=True).first.click()
    _sign(page, "effective", "qa", confirm=True)
    expect(page.get_by_text(re.compile("is effective. Each site"))).to_be_visible()
    for name in ("Marc Vidal", "Montserrat Puig", "Jordi Ferrer"):
        expect(page.locator(".signature", has_text=name).first).to_be_visible()

    # Training recorded in the browser: Madrid's manager trains the operator on v2's changes and
    # signs as trainer; the operator signs as trainee. Lisbon's operator is not trained yet.
    from pocare.masterfile.models import MasterFileVersion
    from pocare.masterfile.selectors import required_training_steps

    v2 = MasterFileVersion.objects.get(number=2)
    _login(page, base, "manager.mad")
    page.goto(f"{base}/training/records/new/")
    page.get_by_label("Trainee (user id)").fill("operator.mad")
    page.get_by_label("Site", exact=True).select_option("MAD")
    page.get_by_label("Kind of training").select_option("version")
    page.get_by_label("Title", exact=True).fill("v2 changes: expansion to day 12")
    page.get_by_label("Date of the training").fill(v2.effective_at.date().isoformat())
    page.get_by_label("Master-file version").select_option(str(v2.pk))
    page.get_by_label("Steps covered").fill(", ".join(required_training_steps(v2)))
    page.get_by_label("User id", exact=True).fill("manager.mad")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("record|sign", re.I)).last.click()
    expect(page.get_by_text(re.compile("awaiting|trainee", re.I)).first).to_be_visible()

    _login(page, base, "operator.mad")
    page.goto(f"{base}/training/to-sign/")
    page.get_by_label("User id").fill("operator.mad")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign as trainee").click()
    expect(page.get_by_text(re.compile("signed|complete", re.I)).first).to_be_visible()

    _login(page, base, "qa")
    page.goto(f"{base}/masterfile/")
    mad = page.locator("tr", has=page.get_by_role("link", name="MAD", exact=True))
    lis = page.locator("tr", has=page.get_by_role("link", name="LIS", exact=True))
    expect(mad.locator("td").nth(1)).to_have_text("v2")
    expect(lis.locator("td").nth(1)).to_have_text("v1")
    expect(lis).to_contain_text("waiting for training")
