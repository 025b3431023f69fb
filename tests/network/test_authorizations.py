"""Site authorizations: which master-file version a site may manufacture, from when, under what
conditions — granted with a signature, revocable, and checked by site_authorized_for (POC-1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.ledger.models import Event, Meaning
from pocare.ledger.signing import SigningRefused, signatures_for
from pocare.ledger.verify import signature_status
from pocare.masterfile.models import MasterFileVersion
from pocare.network.events import NetworkEvent
from pocare.network.models import Site, SiteAuthorization
from pocare.network.selectors import site_authorized_for
from pocare.network.services import site_authorization_revoke, site_authorize
from tests.network.conftest import creds

pytestmark = pytest.mark.django_db


def _authorize(people, product, code="MAD", **kwargs):  # type: ignore[no-untyped-def]
    qa = people["qa"]
    args = {"from_version": 1, "valid_from": None, "conditions": "Prodigy units only", "reason": "PPQ passed",
            "credentials": creds(qa), **kwargs}
    return site_authorize(actor=qa, site=Site.objects.get(code=code), product=product, **args)


def test_qa_authorizes_a_site_with_a_signature(people, product):
    """POC-1 P11-50 P11-70: signed by QA (approved), printed name shown, bound to what was granted."""
    grant = _authorize(people, product)
    [signature] = signatures_for(grant)
    assert signature.meaning == Meaning.APPROVED and signature.signer_printed_name == "Montserrat Puig"
    assert signature_status(signature) == (True, "") and signature.chain == "MAD"
    event = Event.objects.get(event_type=NetworkEvent.SITE_AUTHORIZED, object_id=str(grant.pk))
    assert event.new["product"] == "CART19" and event.new["from_version"] == 1 and event.reason == "PPQ passed"
    v1, v2 = (MasterFileVersion.objects.get(product=product, number=n) for n in (1, 2))
    assert site_authorized_for(grant.site, v1) == (True, "")
    assert site_authorized_for(grant.site, v2) == (True, "")


def test_site_authorized_for_says_why_not(people, product):
    """POC-1: no authorization, a version before the authorized one, a start in the future, a revocation."""
    v1, v2 = (MasterFileVersion.objects.get(product=product, number=n) for n in (1, 2))
    lisbon = Site.objects.get(code="LIS")
    assert site_authorized_for(lisbon, v1) == (False, f"Lisbon POCare site holds no authorization for {product}.")
    grant = _authorize(people, product, code="LIS", from_version=2)
    ok, why = site_authorized_for(lisbon, v1)
    assert not ok and why == "Lisbon POCare site is authorized for CART19 from version 2 on, not for version 1."
    assert site_authorized_for(lisbon, v2) == (True, "")
    assert site_authorized_for(lisbon, v2, at=grant.valid_from - dt.timedelta(minutes=1))[0] is False
    site_authorization_revoke(actor=people["qa"], authorization=grant, reason="Cleanroom requalification failed")
    ok, why = site_authorized_for(lisbon, v2)
    assert not ok and "was revoked" in why
    # what was true before the revocation stays true for that moment
    assert site_authorized_for(lisbon, v2, at=grant.revoked_at - dt.timedelta(microseconds=1)) == (True, "")


def test_an_authorization_may_start_later(people, product):
    """POC-1: 'from when' — not authorized before valid_from."""
    start = timezone.now() + dt.timedelta(days=10)
    _authorize(people, product, code="MUC", valid_from=start)
    v1 = MasterFileVersion.objects.get(product=product, number=1)
    ok, why = site_authorized_for(Site.objects.get(code="MUC"), v1)
    assert not ok and "starts" in why
    assert site_authorized_for(Site.objects.get(code="MUC"), v1, at=start + dt.timedelta(seconds=1)) == (True, "")


def test_revocation_is_recorded_and_final(people, product):
    """P11-10e: the grant, its signature and its revocation all stay; revoking twice is refused."""
    grant = _authorize(people, product)
    site_authorization_revoke(actor=people["qa"], authorization=grant, reason="Site suspended")
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoked_by == people["qa"]
    event = Event.objects.get(event_type=NetworkEvent.AUTHORIZATION_REVOKED, object_id=str(grant.pk))
    assert event.reason == "Site suspended" and event.chain == "MAD"
    assert signature_status(signatures_for(grant).get()) == (True, "")
    with pytest.raises(ValidationError):
        site_authorization_revoke(actor=people["qa"], authorization=grant, reason="again")
    # a new authorization may now be granted
    assert _authorize(people, product, from_version=2).from_version == 2


@pytest.mark.parametrize(("field", "kwargs"), [
    ("from_version", {"from_version": 7}),
    ("from_version", {"from_version": 0}),
    ("valid_from", {"valid_from": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}),
    ("reason", {"reason": " "}),
])
def test_bad_authorization_input_names_the_field(people, product, field, kwargs):
    """Bad input is refused, naming the field; nothing is granted."""
    with pytest.raises(ValidationError) as exc:
        _authorize(people, product, **kwargs)
    assert field in exc.value.message_dict
    assert not SiteAuthorization.objects.exists()


def test_one_authorization_per_site_and_product_at_a_time_and_never_for_the_control_site(people, product):
    """POC-1: revoke before granting another; the Control Site is not authorized, it authorizes."""
    _authorize(people, product)
    with pytest.raises(ValidationError) as exc:
        _authorize(people, product, from_version=2)
    assert "revoke it before" in exc.value.message_dict["site"][0]
    with pytest.raises(ValidationError):
        _authorize(people, product, code="CTRL")


@pytest.mark.parametrize("username", ["qp", "manager.mad", "inspector"])
def test_only_control_site_qa_authorizes(people, product, username):
    """P11-10g: the QP, a site manager, an inspector may not."""
    person = people[username]
    with pytest.raises(PermissionDenied):
        site_authorize(actor=person, site=Site.objects.get(code="MAD"), product=product, from_version=1,
                       valid_from=None, conditions="", reason="x", credentials=creds(person))


def test_a_wrong_password_grants_nothing(people, product):
    """P11-200: no signature, no authorization."""
    with pytest.raises(SigningRefused):
        _authorize(people, product, credentials=creds(people["qa"], password="nope"))
    assert not SiteAuthorization.objects.exists()


def test_grant_and_revoke_through_the_site_page(people, product, client, login):
    """P11-50 P11-200: the page signs with user id and password first, then password only in the session."""
    login("qa")
    page = client.get("/network/MAD/").content.decode()
    assert "Grant an authorization" in page and 'name="username"' in page
    response = client.post("/network/MAD/authorize/", {"product": "CART19", "from_version": "1", "conditions": "",
                                                       "reason": "PPQ passed", "username": "qa",
                                                       "password": "correct horse battery staple 42"})
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = SiteAuthorization.objects.get(site__code="MAD")
    page = client.get("/network/MAD/").content.decode()
    assert "Montserrat Puig" in page and "In force" in page
    # a bad reason names the field; nothing revoked
    assert client.post(f"/network/authorizations/{grant.pk}/revoke/", {"reason": ""}).status_code == 400
    assert client.post(f"/network/authorizations/{grant.pk}/revoke/", {"reason": "Suspended"}).status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    client.logout()
    login("manager.mad")
    assert client.post(f"/network/authorizations/{grant.pk}/revoke/", {"reason": "x"}).status_code == 403
