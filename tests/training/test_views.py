"""The training pages: recording and signing through the web, the matrix, a person's record with
signatures shown (P11-50), QA's qualification pages, the gate check; bad input is a 400 naming
the field and changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from pocare.ledger.models import Event, Meaning, Signature
from pocare.training.events import TrainingEvent
from pocare.training.models import Qualification, TrainingRecord, TrainingStatus
from tests.conftest import PASSWORD
from tests.training.helpers import make_versions, newcomer, qualification, qualify_operator, train, user

pytestmark = pytest.mark.django_db


def _post_record(client, **overrides):
    data = {"trainee": "operator.mad", "site": "MAD", "kind": "course", "title": "Cell counting course",
            "trained_on": timezone.now().date().isoformat(), "qualification": "cell-counting", "passed": "on",
            "username": "manager.mad", "password": PASSWORD}
    data.update(overrides)
    return client.post(reverse("training:record_new"), data)


def test_a_manager_records_and_the_trainee_signs_through_the_web(client, login):
    """P11-10i P11-200: the trainer signs with user id and password; the trainee then signs on their list."""
    qualification("cell-counting")
    login("manager.mad")
    response = _post_record(client)
    assert response.status_code == 302, response.content.decode()[:2000]
    record = TrainingRecord.objects.get(title="Cell counting course")
    assert record.status == TrainingStatus.AWAITING_TRAINEE and record.trainer.username == "manager.mad"
    client.logout()

    login("operator.mad")
    listing = client.get(reverse("training:to_sign"))
    assert listing.status_code == 200 and "Cell counting course" in listing.content.decode()
    wrong = client.post(reverse("training:to_sign"), {"record": record.pk, "username": "operator.mad",
                                                      "password": "nope"})
    assert wrong.status_code == 400 and "Wrong user id or password" in wrong.content.decode()
    signed = client.post(reverse("training:to_sign"), {"record": record.pk, "username": "operator.mad",
                                                       "password": PASSWORD})
    assert signed.status_code == 302
    record.refresh_from_db()
    assert record.status == TrainingStatus.COMPLETE
    assert Signature.objects.filter(record_type="training.TrainingRecord", record_id=str(record.pk),
                                    meaning=Meaning.PERFORMED, signer__username="operator.mad").exists()


def test_bad_input_names_the_field_and_changes_nothing(client, login):
    """P11-10i: a refused record is a 400 that says which field is wrong; nothing is written."""
    qualification("cell-counting")
    login("manager.mad")
    before = (Event.objects.count(), TrainingRecord.objects.count())
    cases = [
        ({"trainee": "manager.mad"}, "two different people"),
        ({"trainee": "nobody.here"}, "no person with the user id"),
        ({"kind": "assessment"}, "needs the score"),
        ({"score": "70"}, "needs a pass mark"),
        ({"trained_on": "2199-01-01"}, "in the future"),
        ({"site": "LIS"}, "Select a valid choice"),  # not a site this manager may record at
        ({"kind": "version", "qualification": ""}, "names the master-file version"),
    ]
    for overrides, text in cases:
        response = _post_record(client, **overrides)
        assert response.status_code == 400, overrides
        assert text in response.content.decode(), (overrides, text)
    assert (Event.objects.count(), TrainingRecord.objects.count()) == before


def test_the_record_page_shows_both_signatures_with_name_meaning_and_time(client, login):
    """P11-50: each signature shows printed name, date and time, and meaning, on every display."""
    record = train("operator.mad", qualification_code="aseptic-processing", title="Gowning")
    login("qc.mad")
    page = client.get(reverse("training:record", args=[record.pk])).content.decode()
    for text in ("Lucía Navarro", "Pablo Ortega", "Verified", "Performed", " UTC", "valid"):
        assert text in page
    person = client.get(reverse("training:person", args=[record.trainee_id])).content.decode()
    assert "Gowning" in person and "trainer and trainee" in person


def test_the_trainee_signs_on_the_record_page_and_nobody_else_can(client, login):
    """P11-100: the sign form is the trainee's; another person's attempt is refused and changes nothing."""
    record = train("operator.mad", qualification_code="aseptic-processing", sign=False)
    login("qc.mad")
    page = client.get(reverse("training:record", args=[record.pk])).content.decode()
    assert "Sign as trainee" not in page
    refused = client.post(reverse("training:record", args=[record.pk]),
                          {"record": record.pk, "username": "qc.mad", "password": PASSWORD})
    assert refused.status_code == 403
    client.logout()
    login("operator.mad")
    assert "Sign as trainee" in client.get(reverse("training:record", args=[record.pk])).content.decode()
    done = client.post(reverse("training:record", args=[record.pk]),
                       {"record": record.pk, "username": "operator.mad", "password": PASSWORD})
    assert done.status_code == 302
    record.refresh_from_db()
    assert record.status == TrainingStatus.COMPLETE


def test_the_matrix_page_highlights_expiring_and_names_missing_and_expired(client, login):
    """P11-10i: expiring within 30 days stands out; missing and expired are written out, not only coloured."""
    from pocare.accounts.roles import Role
    from pocare.training.models import CurriculumItem
    from pocare.training.services import curriculum_item_add

    for code in ("cell-counting", "prodigy-operation", "cryopreservation"):
        q = qualification(code)
        if not CurriculumItem.objects.filter(role=Role.OPERATOR, qualification=q).exists():
            curriculum_item_add(actor=user("qa"), role=Role.OPERATOR, qualification=q, reason="test")
    newcomer("trainee.dub", "Dara Trainee")
    train("trainee.dub", qualification_code="cell-counting", days_ago=350)
    train("trainee.dub", qualification_code="prodigy-operation", days_ago=400)
    login("manager.dub")
    page = client.get(reverse("training:matrix")).content.decode()
    assert "cell-expiring" in page and "expires " in page
    assert ">expired<" in page
    login("qa")
    network = client.get(reverse("training:matrix") + "?site=").content.decode()
    assert "whole network" in network and "site-MAD" in network and "site-DUB" in network
    assert client.get(reverse("training:matrix") + "?site=NOPE").status_code == 404


def test_a_site_person_cannot_open_another_sites_matrix(client, login):
    """P11-10g: a site's people see their own site only."""
    login("manager.mad")
    assert client.get(reverse("training:matrix") + "?site=LIS").status_code == 404


def test_qa_defines_qualifications_and_curricula_on_the_page(client, login):
    """P11-10g: Control Site QA changes them; a site manager sees them but cannot."""
    login("manager.mad")
    page = client.get(reverse("training:qualifications"))
    assert page.status_code == 200 and "Define a qualification" not in page.content.decode()
    denied = client.post(reverse("training:qualifications"),
                         {"action": "define", "code": "x-y", "name": "X", "validity_months": 12, "reason": "r"})
    assert denied.status_code == 403
    client.logout()
    login("qa")
    bad = client.post(reverse("training:qualifications"),
                      {"action": "define", "code": "vector-handling", "name": "Vector handling",
                       "validity_months": 0, "reason": "New vector"})
    assert bad.status_code == 400 and not Qualification.objects.filter(code="vector-handling").exists()
    ok = client.post(reverse("training:qualifications"),
                     {"action": "define", "code": "vector-handling", "name": "Vector handling",
                      "validity_months": 12, "reason": "New vector"})
    assert ok.status_code == 302 and Qualification.objects.filter(code="vector-handling").exists()
    add = client.post(reverse("training:qualifications"),
                      {"action": "curriculum_add", "role": "operator", "qualification": "vector-handling",
                       "reason": "Operators handle vector"})
    assert add.status_code == 302
    assert Event.objects.filter(event_type=TrainingEvent.CURRICULUM_CHANGED, reason="Operators handle vector").exists()


def test_qa_revokes_a_qualification_on_the_person_page(client, login, people):
    """P11-10g: revocation needs a reason; a site manager may not revoke."""
    train("operator.mad", qualification_code="aseptic-processing")
    url = reverse("training:person", args=[people["operator.mad"].pk])
    login("manager.mad")
    assert client.post(url, {"qualification": "aseptic-processing", "reason": "x"}).status_code == 403
    client.logout()
    login("qa")
    assert client.post(url, {"qualification": "aseptic-processing", "reason": ""}).status_code == 400
    assert client.post(url, {"qualification": "aseptic-processing", "reason": "Media fill failed"}).status_code == 302
    assert "revoked" in client.get(url).content.decode()


def test_the_gate_page_answers_with_reasons(client, login):
    """P11-10i: QA and inspectors can ask the gate and read why not."""
    versions = make_versions()
    qualify_operator("operator.mad", versions.v1)
    login("inspector")
    base = {"person": "operator.mad", "site": "MAD", "version": versions.v1.pk}
    page = client.get(reverse("training:gate"), {**base, "step": "prodigy-setup"}).content.decode()
    assert "Allowed." in page and "prodigy-setup" in page
    lisbon = client.get(reverse("training:gate"), {**base, "site": "LIS"}).content.decode()
    assert "No step is allowed" in lisbon and "holds no active operator or QC analyst role at LIS" in lisbon
    bad = client.get(reverse("training:gate"), {**base, "version": "999999"})
    assert bad.status_code == 400


def test_values_no_database_can_hold_are_refused_not_crashed_on(client, login):
    """P11-10g: a NUL in a parameter is bad input (4xx), never a server error (PostgreSQL refuses NUL)."""
    login("qa")
    urls = ["/training/?site=%00", "/training/gate/?person=%00&site=%00&version=1&step=%00",
            "/training/records/new/?trainee=%00&site=%00", "/api/training/records/?trainee=%00",
            "/api/training/gate/?person=%00&site=MAD&version=1&step=x", "/api/training/matrix/?site=%00"]
    for url in urls:
        assert client.get(url).status_code in (200, 400, 404), url
    response = client.post(reverse("training:qualifications"), {"action": "curriculum_add", "role": "operator",
                                                                "qualification": "\x00", "reason": "x"})
    assert response.status_code == 400
