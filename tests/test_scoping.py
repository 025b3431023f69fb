"""The scoping rule (issue 13): a person sees or acts on an object at a site only with the permission
held at that site; Control Site roles hold theirs everywhere. People with roles at two sites, and a
Control Site planner who also works at a site, are where a looser rule ("the permission anywhere,
then all the person's sites") showed one site's records to the other."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm, Role
from pocare.accounts.services import membership_grant, user_create
from pocare.network.models import Site
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _site(code: str) -> Site:
    return Site.objects.get(code=code)


def _planner_and_manager_at_mad():  # type: ignore[no-untyped-def]
    person = user_create(actor=None, username="planner+manager.mad", printed_name="Nuria Vall",
                         email="nuria@demo.pocare.invalid", reason="test", initial_password=PASSWORD)
    membership_grant(actor=None, user=person, role=Role.PLANNER, site=_site("CTRL"), reason="test")
    membership_grant(actor=None, user=person, role=Role.SITE_MANAGER, site=_site("MAD"), reason="test")
    return person


def test_a_permission_is_held_only_at_the_sites_whose_role_carries_it(people):
    """P11-10g: operator at Lisbon and navigator at Madrid holds the batch record at Lisbon only, the
    custody view at both."""
    person = people["operator.lis+navigator.mad"]
    assert access.sites_with_perm(person, Perm.BATCH_VIEW) == {_site("LIS").pk}
    assert access.sites_with_perm(person, Perm.DEVIATION_VIEW) == {_site("LIS").pk}
    assert access.sites_with_perm(person, Perm.CUSTODY_VIEW) == {_site("LIS").pk, _site("MAD").pk}
    assert access.sites_with_perm(person, Perm.LEDGER_VIEW) == set()


def test_a_control_site_role_holds_its_permissions_network_wide_and_only_those(people):
    """P11-10g: a planner who is also an operator at Madrid plans for the network, but reads batch
    records of Madrid only (planning does not carry the batch record)."""
    person = people["planner+operator.mad"]
    assert access.sites_with_perm(person, Perm.PLANNING_VIEW) is None
    assert access.holds_network_wide(person, Perm.MASTERFILE_VIEW)
    assert access.sites_with_perm(person, Perm.BATCH_VIEW) == {_site("MAD").pk}
    assert not access.holds_network_wide(person, Perm.BATCH_VIEW)


def test_batches_of_a_site_where_only_custody_is_held_are_not_listed(people):
    """P11-10g: the Madrid batch does not exist for the Lisbon operator who navigates at Madrid."""
    from pocare.manufacturing.selectors import batches_visible
    from tests.manufacturing.matrix import device_batch

    mad, lis = device_batch("MAD"), device_batch("LIS")
    seen = set(batches_visible(people["operator.lis+navigator.mad"]).values_list("reference", flat=True))
    assert lis.reference in seen
    assert mad.reference not in seen


def test_a_planner_who_manages_a_site_is_no_training_admin():
    """P11-10g: defining qualifications is Control Site QA's; a planner who is a site manager holds
    TRAINING_RECORD at the site only, so is not a training admin."""
    from pocare.training.services import is_training_admin, may_record_training

    person = _planner_and_manager_at_mad()
    assert not is_training_admin(person)
    assert may_record_training(person, _site("MAD"))
    assert not may_record_training(person, _site("LIS"))


def test_a_planner_who_manages_a_site_reviews_that_sites_trail_not_the_networks():
    """P11-10g: the network chain is reviewed with LEDGER_REVIEW held network-wide only."""
    from pocare.ledger.models import NETWORK_CHAIN
    from pocare.ledger.signing import SigningCredentials
    from pocare.trail.services import trail_review_sign

    person = _planner_and_manager_at_mad()
    creds = SigningCredentials(username=person.username, password=PASSWORD)
    with pytest.raises(PermissionDenied):
        trail_review_sign(actor=person, chain=NETWORK_CHAIN, comment="read", credentials=creds)
    with pytest.raises(PermissionDenied):
        trail_review_sign(actor=person, chain="LIS", comment="read", credentials=creds)
    review = trail_review_sign(actor=person, chain="MAD", comment="read", credentials=creds)
    assert review.chain == "MAD"


def test_the_capa_form_offers_only_change_requests_the_person_may_see(client, login):
    """P11-10g: the CAPA form of a Madrid deviation lists Madrid's change requests to the Madrid
    manager, never Lisbon's (reference and title were shown before)."""
    from tests.masterfile.helpers import V2_TEXT, raise_change
    from tests.quality.helpers import deviation

    mad = raise_change(sites=("MAD",), title="Madrid only")
    lis = raise_change(sites=("LIS",), title="Lisbon only",
                       document=V2_TEXT.replace("        - id: release-sampling\n", "        - id: release-sampling-v2\n"))
    d = deviation("MAD")
    login("manager.mad")
    body = client.get(f"/quality/deviations/{d.reference}/").content.decode()
    assert mad.reference in body
    assert lis.reference not in body and "Lisbon only" not in body
    response = client.post(f"/quality/deviations/{d.reference}/", {
        "action": "capa_add", "kind": "corrective", "description": "x", "owner": str(client.session["_auth_user_id"]),
        "due_on": "2030-01-01", "change_request": str(lis.pk)})
    assert response.status_code == 400
    assert not d.capa_actions.exists()


def test_the_people_pages_show_a_persons_roles_only_at_sites_the_viewer_may_see(client, login, people):
    """A11-IAM: Madrid's manager sees the Madrid role of someone who also holds one at Lisbon, and
    nothing of the Lisbon role, on the people list and on the person page."""
    both = people["manager.mad+physician.lis"]
    login("manager.mad")
    for url in ("/people/", f"/people/{both.pk}/"):
        page = client.get(url).content.decode()
        assert both.username in page or both.printed_name in page, url
        assert "LIS" not in page, url
    api = client.get(f"/api/users/{both.pk}/").json()
    assert [m["site"] for m in api["memberships"]] and "LIS" not in str(api["memberships"])
    client.logout()
    login("qa")
    assert "LIS" in client.get(f"/people/{both.pk}/").content.decode()
