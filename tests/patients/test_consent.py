"""PAT-CONSENT: consent documents versioned per language, the signed version and language kept, and
a withdrawal that holds everything derived from the patient's material — manufacture, the QP's
certification and the dispatch — through the real services of the apps below."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.custody import services as custody
from pocare.custody.models import HandoffKind
from pocare.ledger.models import Event
from pocare.manufacturing import services as mfg
from pocare.patients import services
from pocare.patients.models import Consent, Stage
from pocare.release import services as release
from pocare.release.checklist import release_checklist
from tests.manufacturing import helpers as mh
from tests.patients.pathway_helpers import BODY, consented, document, eligible, linked, user
from tests.release import helpers as rh

pytestmark = pytest.mark.django_db


def test_each_language_has_its_own_versions_with_a_content_hash(referral):
    """PAT-CONSENT: a change is a new version (never an edit); the hash binds what was read."""
    es1 = document(referral, "es")
    en1 = document(referral, "en")
    es2 = services.consent_document_issue(actor=user("qa"), product=referral.product, code="CD19-ICF", language="es",
                                          title="Consentimiento informado", body=BODY["es"] + " Versión 2.",
                                          reason="Ethics committee amendment")
    assert (es1.version, en1.version, es2.version) == (1, 1, 2)
    assert len({es1.content_hash, en1.content_hash, es2.content_hash}) == 3
    assert services.consent_document_in_force(code="CD19-ICF", language="es") == es2
    assert services.consent_document_in_force(code="CD19-ICF", language="es", at=es2.effective_from
                                              - dt.timedelta(seconds=1)) == es1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("code", "CD19 ICF!", "letters, digits"),
    ("language", "fr", "Choose one of en, es, pt"),
    ("title", "", "Give the title"),
    ("body", "Acepto\x00", "NUL"),
    ("body", "x" * 100_001, "at most 100000"),
])
def test_a_consent_document_is_refused_with_what_is_allowed(referral, field, value, message):
    values = {"code": "CD19-ICF", "language": "es", "title": "Consentimiento", "body": BODY["es"]}
    with pytest.raises(ValidationError, match=message):
        services.consent_document_issue(actor=user("qa"), product=referral.product, reason="issue",
                                        **{**values, field: value})


def test_only_the_control_site_issues_consent_documents(referral):
    for outsider in ("physician.mad", "navigator.mad", "qp"):
        with pytest.raises(PermissionDenied):
            services.consent_document_issue(actor=user(outsider), product=referral.product, code="CD19-ICF",
                                            language="es", title="Consentimiento", body=BODY["es"], reason="issue")


def test_consent_is_kept_with_the_version_and_language_signed(referral):
    """PAT-CONSENT: only an eligible referral is consented, to the version in force in the patient's
    language (another language only with a reason); the consent and its event keep version,
    language and hash."""
    doc_es, doc_en = document(referral, "es"), document(referral, "en")
    now = timezone.now()
    with pytest.raises(ValidationError, match="needs a referral that is eligible"):
        services.consent_sign(actor=user("physician.mad"), referral=referral, document=doc_es, signed_at=now)
    referral = eligible(referral)
    with pytest.raises(ValidationError, match="the patient's language is Español"):
        services.consent_sign(actor=user("physician.mad"), referral=referral, document=doc_en, signed_at=now)
    with pytest.raises(ValidationError, match="in the future"):
        services.consent_sign(actor=user("physician.mad"), referral=referral, document=doc_es,
                              signed_at=now + dt.timedelta(days=1))
    later = document(referral, "es", effective_from=now - dt.timedelta(minutes=1))  # version 2 is in force
    with pytest.raises(ValidationError, match="was not in force when the patient signed; version 2 was"):
        services.consent_sign(actor=user("physician.mad"), referral=referral, document=doc_es, signed_at=now)
    consent = services.consent_sign(actor=user("physician.mad"), referral=referral, document=later, signed_at=now)
    referral.refresh_from_db()
    assert referral.stage == Stage.CONSENTED
    assert (consent.document.version, consent.document.language) == (2, "es")
    event = Event.objects.filter(event_type="patients.consent_signed").latest("pk")
    assert event.new["version"] == 2 and event.new["language"] == "es"
    assert event.new["content_hash"] == later.content_hash


def test_another_language_is_signed_when_the_reason_is_given(referral):
    referral = eligible(referral)
    doc_en = document(referral, "en")
    services.consent_sign(actor=user("navigator.mad"), referral=referral, document=doc_en, signed_at=timezone.now(),
                          language_reason="The patient reads English and asked for it")
    event = Event.objects.filter(event_type="patients.consent_signed").latest("pk")
    assert event.new["language_reason"].startswith("The patient reads English")


def test_withdrawal_holds_certification_and_dispatch(referral):
    """PAT-CONSENT ATMP-REL: after the patient withdraws, the release checklist shows the hold, the QP
    cannot certify, and the product is not dispatched."""
    batch = rh.ready_batch("MAD")
    referral = linked(consented(referral), batch.order)
    custody.handoff_record(actor=mh.user("operator.mad"), order=batch.order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=batch.order.coi, site=batch.site, location="Fridge")
    assert release_checklist(batch).line("holds").state == "pass"
    services.consent_withdraw(actor=user("navigator.mad"), referral=referral,
                              reason="The patient no longer wishes to be treated")
    referral.refresh_from_db()
    assert referral.stage == Stage.WITHDRAWN
    assert Consent.objects.get(referral=referral).withdrawn_at is not None
    line = release_checklist(batch).line("holds")
    assert line.state == "fail" and "Consent withdrawn by patient " + referral.patient.pseudonym in line.detail
    with pytest.raises(ValidationError, match="Consent withdrawn"):
        release.batch_certify(actor=mh.user("qp"), batch=batch, reason="Meets the master file.",
                              credentials=mh.creds("qp"))
    assert any("Consent withdrawn" in hold for hold in custody.dispatch_holds(batch.order))
    with pytest.raises(ValidationError, match="Consent withdrawn"):
        custody.handoff_record(actor=mh.user("operator.mad"), order=batch.order,
                               kind=HandoffKind.DISPATCH_TO_HOSPITAL, presented_identifier=batch.order.coi,
                               site=batch.site, location="Courier")
    with pytest.raises(ValidationError, match="no consent in force"):
        services.consent_withdraw(actor=user("navigator.mad"), referral=referral, reason="again")


def test_withdrawal_stops_manufacture_before_the_batch_and_at_the_next_step(referral, patient):
    """PAT-CONSENT: a batch does not start on the material of a patient who withdrew; a batch
    already running records no further step."""
    mh.lots("MAD", mh.world())
    waiting = mh.received_order("MAD")
    referral = linked(consented(referral), waiting)
    services.consent_withdraw(actor=user("physician.mad"), referral=referral, reason="Withdrew at the visit")
    assert any("Consent withdrawn" in p for p in mfg.batch_start_problems(order=waiting,
                                                                        unit=mh.unit_for_a_whole_batch("MAD")))
    operator = mh.user("operator.mad")
    with pytest.raises(ValidationError, match="Consent withdrawn"):
        mfg.batch_start(actor=operator, order=waiting, unit=mh.unit_for_a_whole_batch("MAD"),
                        presented_identifier=waiting.collections.get().din, credentials=mh.creds(operator))

    batch = mh.started_batch("MAD")
    second = services.referral_create(actor=user("physician.mad"), patient=patient, product=referral.product,
                                      indication="r/r DLBCL", weight_kg="68.5")
    second = linked(consented(second), batch.order)
    services.consent_withdraw(actor=user("physician.mad"), referral=second, reason="Withdrew by phone")
    with pytest.raises(ValidationError, match="Consent withdrawn"):
        mh.do_step(batch)
