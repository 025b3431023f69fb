"""Hospital sign-on in Chromium: "Sign in with …" on the login page, the provider's own form
(oidc-provider-mock over real HTTP), back to POCare signed in as the linked person (issue 16)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from oidc_provider_mock import run_server_in_thread
from playwright.sync_api import ConsoleMessage, Page, expect

from pocare.accounts import services
from pocare.accounts.events import AccountEvent
from pocare.accounts.models import User
from pocare.ledger.models import Event

pytestmark = pytest.mark.browser


def test_sign_in_with_the_hospital_through_its_form(live_server, tx_db, page: Page, settings, monkeypatch):
    """A11-IAM: the button, the provider's form, the way back; no policy violation on the way; an
    unknown subject lands on a page that says so."""
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.append(message.text)

    page.on("console", on_console)
    with run_server_in_thread(require_nonce=True) as server:
        issuer = f"http://localhost:{server.server_port}"
        monkeypatch.setenv("POCARE_TEST_OIDC_SECRET", "secret")
        settings.POCARE_OIDC_PROVIDERS = [{
            "key": "hum", "name": "Hospital Universitario de Madrid", "issuer": issuer, "client_id": "pocare",
            "client_secret_env": "POCARE_TEST_OIDC_SECRET", "sites": ["MAD"]}]
        cache.clear()
        operator = User.objects.get(username="operator.mad")
        services.identity_link(actor=None, user=operator, provider_key="hum", issuer=issuer,
                               subject="ana.garcia", reason="browser test")
        base = live_server.url
        page.goto(f"{base}/login/")
        page.get_by_role("button", name="Sign in with Hospital Universitario de Madrid").click()
        expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
        page.get_by_placeholder("sub").fill("ana.garcia")
        page.get_by_role("button", name="Authorize", exact=True).click()
        expect(page).to_have_url(f"{base}/")
        expect(page.get_by_text(operator.printed_name).first).to_be_visible()
        assert Event.objects.filter(event_type=AccountEvent.LOGGED_IN, actor=operator).exists()

        page.context.clear_cookies()
        page.goto(f"{base}/login/")
        page.get_by_role("button", name=re.compile("Sign in with Hospital")).click()
        page.get_by_placeholder("sub").fill("nobody.known")
        page.get_by_role("button", name="Authorize", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("is not linked to a POCare person")
    assert not [m for m in console if "Content Security Policy" in m], console
