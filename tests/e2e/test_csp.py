"""The Content-Security-Policy in a real browser: no page breaks it, and what used to be inline
script (htmx handlers, confirmations, dialogs, auto-submitting selects) still works."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

#: Recorded by the page itself; Playwright's init scripts are not subject to the page's policy.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || "") + ":" + e.lineNumber);
});
"""


def _login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("User id").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    expect(page).to_have_url(f"{base}/")


def _unit_at(site_code: str) -> Any:
    from pocare.accounts.models import User
    from pocare.network import services
    from pocare.network.models import Site

    today = timezone.now().date()
    return services.unit_register(
        actor=User.objects.get(username="qa"), site=Site.objects.get(code=site_code), device_type="clinimacs_prodigy",
        serial=f"CSP-{site_code}", calibration_due=today + dt.timedelta(days=90),
        maintenance_due=today + dt.timedelta(days=120), reason="browser test",
    )


def test_main_pages_break_no_content_security_policy_and_still_work(live_server, tx_db, page: Page):
    """P11-300: the pages QA uses most load with no CSP violation (nor an htmx filter needing eval:
    the batch page's live device panel); the htmx filter updates the
    trail in place, a lifecycle dialog opens and closes, the scope select submits itself, and a
    confirmation that is dismissed sends nothing while one that is accepted sends the form."""
    from tests.manufacturing.matrix import device_batch

    unit = _unit_at("MAD")
    batch = device_batch("MAD")
    base = live_server.url
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A policy violation, or htmx refusing to evaluate a trigger filter (allowEval: false).
        if any(sign in message.text for sign in ("Content Security Policy", "Content-Security-Policy",
                                                   "evalDisallowedError")):
            console.append(message.text)

    page.on("console", on_console)
    page.add_init_script(WATCH_VIOLATIONS)
    _login(page, base, "qa")
    violations: list[str] = []

    def visit(path: str) -> None:
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        violations.extend(page.evaluate("window.__cspViolations"))

    for name, kwargs in [("web:home", None), ("network:sites", None), ("masterfile:list", None),
                         ("training:matrix", None), ("custody:orders", None), ("trail:verify", None),
                         ("trail:reviews", None), ("network:unit", {"pk": unit.pk}),
                         # the live device panel polls with htmx (a paused poll, not an eval filter)
                         ("manufacturing:batch", {"reference": batch.reference})]:
        visit(reverse(name, kwargs=kwargs))

    # htmx: changing a filter replaces the result table without reloading, and drops empty filters.
    visit(reverse("trail:trail"))
    page.evaluate("window.__pageMarker = 1")
    page.get_by_label("Site (chain)").fill("LIS")
    page.get_by_label("Event type").select_option("accounts.role_granted")
    expect(page).to_have_url(re.compile(r"chain=LIS"))
    expect(page.locator("#trail-results table tbody tr")).to_have_count(5)
    assert page.evaluate("window.__pageMarker") == 1  # same document: htmx swapped, no reload
    assert "q=" not in page.url  # empty parameters were dropped by pocare.js
    violations.extend(page.evaluate("window.__cspViolations"))

    # Dialogs on the site page open and close (data-open / data-close).
    visit(reverse("network:site", kwargs={"code": "MAD"}))
    opener = page.locator("[data-open^='dlg-to-']").first
    dialog = page.locator(f"dialog#{opener.get_attribute('data-open')}")
    opener.click()
    expect(dialog).to_be_visible()
    dialog.locator("[data-close]").first.click()
    expect(dialog).to_be_hidden()

    # The scope select sends its form when changed (data-autosubmit).
    with page.expect_navigation():
        page.locator("#scope-select").select_option("LIS")
    expect(page.locator("#scope-select")).to_have_value("LIS")
    with page.expect_navigation():
        page.locator("#scope-select").select_option("")
    expect(page.locator("#scope-select")).to_have_value("")

    # A confirmation dismissed sends nothing; accepted, the form is sent.
    visit(reverse("network:unit", kwargs={"pk": unit.pk}))
    form = page.locator("form[data-confirm]")
    form.locator("select[name=status]").select_option("out_of_service")
    form.locator("textarea[name=reason]").fill("Pump noise, out for service")
    page.once("dialog", lambda d: d.dismiss())
    form.get_by_role("button", name="Change status").click()
    page.wait_for_timeout(300)
    unit.refresh_from_db()
    assert unit.status != "out_of_service"
    page.once("dialog", lambda d: d.accept())
    form.get_by_role("button", name="Change status").click()
    page.wait_for_load_state("networkidle")
    unit.refresh_from_db()
    assert unit.status == "out_of_service"
    violations.extend(page.evaluate("window.__cspViolations"))

    assert not violations, violations
    assert not console, console
