"""Release services, pages, certificate and API: only the QP certifies (POC-7), stages in order, the
out-of-specification workflow (ATMP-OOS), the certificate with its signature manifestation (P11-50,
A11-8), and dispatch to the hospital only after certification (ATMP-REL). The refusals that store
nothing, on one batch made once for their module, are in test_release_refusals.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.custody import services as custody
from pocare.custody.models import HandoffKind
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event, Signature
from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import Batch
from pocare.release import services
from pocare.release.certificate import certificate_context
from pocare.release.models import Certification, OosStatus
from pocare.release.selectors import release_queue, stage
from tests.manufacturing import helpers as h
from tests.release import helpers as rh

pytestmark = pytest.mark.django_db


def certify(b: Batch, who: str = "qp") -> Certification:
    return services.batch_certify(actor=h.user(who), batch=b, reason="Meets the master file.", credentials=h.creds(who))


@pytest.fixture
def ready():  # type: ignore[no-untyped-def]
    return rh.ready_batch("MAD")


def test_the_qp_certifies_with_the_checklist_snapshot_and_signature(ready):
    """ATMP-REL P11-50 P11-70: the certification keeps the checklist and its hash, is signed
    (released) and is one ledger event; a second decision is refused."""
    cert = certify(ready)
    assert cert.decision == "released" and cert.checklist_hash == content_hash(cert.checklist)
    assert {ln["id"]: ln["state"] for ln in cert.checklist["lines"]}["results"] == "pending"
    sig = Signature.objects.get(record_type="release.Certification", record_id=str(cert.pk))
    assert sig.meaning == "released" and sig.record_hash == content_hash(cert.signed_content())
    assert Event.objects.filter(event_type="release.certified", object_id=str(cert.pk)).count() == 1
    assert stage(ready) == "released"
    with pytest.raises(ValidationError, match="already"):
        services.batch_reject(actor=h.user("qp"), batch=ready, reason="changed my mind", credentials=h.creds("qp"))


def test_the_qp_rejects_with_a_reason(ready):
    """ATMP-REL: a rejection is signed (rejected) with its reason; the batch never leaves."""
    with pytest.raises(ValidationError) as exc:
        services.batch_reject(actor=h.user("qp"), batch=ready, reason=" ", credentials=h.creds("qp"))
    assert "reason" in exc.value.message_dict
    cert = services.batch_reject(actor=h.user("qp"), batch=ready, reason="Doubt about the bag integrity",
                                 credentials=h.creds("qp"))
    assert cert.decision == "rejected"
    assert Signature.objects.get(record_type="release.Certification", record_id=str(cert.pk)).meaning == "rejected"


def test_stages_come_in_order():
    """ATMP-REL: review by exception, then the site's QC review (stage 1), then the QP (stage 2);
    nothing certifies a batch with a failing line."""
    b = rh.completed_batch("MAD")
    assert stage(b) == "exceptions"
    with pytest.raises(ValidationError, match="review by exception"):
        rh.qc_review(b)
    with pytest.raises(ValidationError, match="Stage 1"):
        certify(b)
    rh.review_exceptions(b)
    assert stage(b) == "qc_review"
    review = rh.qc_review(b)
    assert review.checklist_hash == content_hash(review.checklist)
    assert Signature.objects.filter(record_type="release.QcReview", record_id=str(review.pk), meaning="reviewed")
    assert stage(b) == "certification"
    from pocare.quality.services import deviation_raise

    dev = deviation_raise(actor=h.user("operator.mad"), site=b.site, title="Late label", description="x", batch=b)
    with pytest.raises(ValidationError, match=dev.reference):
        certify(b)
    rh.close_deviation(dev)
    with pytest.raises(ValidationError, match="Review by exception"):
        certify(b)  # the new deviation was not there when the exceptions were reviewed
    rh.review_exceptions(b)
    assert certify(b).decision == "released"


def test_in_progress_batch_cannot_be_reviewed():
    """ATMP-REL: release starts when manufacture is completed."""
    b = h.started_batch("MAD")
    with pytest.raises(ValidationError, match="completed"):
        rh.review_exceptions(b)


def test_dispatch_to_the_hospital_waits_for_certification(ready):
    """ATMP-REL POC-7: custody refuses dispatch to the treating hospital until the QP certified."""
    order = ready.order
    custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=order.coi, site=ready.site, location="Fridge")
    with pytest.raises(ValidationError, match="certified for release by the QP"):
        custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.DISPATCH_TO_HOSPITAL,
                               presented_identifier=order.coi, site=ready.site, location="Courier")
    rh.review_trail(ready)  # the fresh hold is part of the batch's trail (A11-12)
    certify(ready)
    handoff = custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.DISPATCH_TO_HOSPITAL,
                                     presented_identifier=order.coi, site=ready.site, location="Courier")
    assert handoff.outcome == "completed"


def test_a_rejected_batch_is_never_dispatched(ready):
    """ATMP-REL: rejection is not release."""
    services.batch_reject(actor=h.user("qp"), batch=ready, reason="No", credentials=h.creds("qp"))
    order = ready.order
    custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=order.coi, site=ready.site, location="Fridge")
    with pytest.raises(ValidationError, match="certified for release by the QP"):
        custody.handoff_record(actor=h.user("operator.mad"), order=order, kind=HandoffKind.DISPATCH_TO_HOSPITAL,
                               presented_identifier=order.coi, site=ready.site, location="Courier")
    assert not order.handoffs.filter(kind=HandoffKind.DISPATCH_TO_HOSPITAL).exists()


# --- out of specification ------------------------------------------------------------------------


def _oos_batch() -> Batch:
    b = rh.completed_batch("MAD", bad={"viability"})
    from pocare.quality.models import Deviation

    for dev in Deviation.objects.filter(batch=b):
        rh.close_deviation(dev)
    rh.review_trail(b)
    rh.review_exceptions(b)
    rh.qc_review(b)
    return b


def test_oos_release_is_its_own_workflow_in_order_and_is_named_on_the_certificate():
    """ATMP-OOS: the physician asks (only when a release-critical attribute is out of specification),
    the QP evaluates the risk, the physician accepts, the sponsor or authority is notified — in that
    order; then the QP may certify, the certification links the OOS release and the certificate says so."""
    b = _oos_batch()
    with pytest.raises(ValidationError, match="out-of-specification release"):
        certify(b)
    with pytest.raises(PermissionDenied):
        services.oos_request(actor=h.user("qp"), batch=b, clinical_justification="x", credentials=h.creds("qp"))
    with pytest.raises(ValidationError) as exc:
        services.oos_request(actor=h.user("physician.mad"), batch=b, clinical_justification=" ",
                             credentials=h.creds("physician.mad"))
    assert "clinical_justification" in exc.value.message_dict
    oos = services.oos_request(actor=h.user("physician.mad"), batch=b, credentials=h.creds("physician.mad"),
                               clinical_justification="Relapsing fast; no other option; re-manufacture too late.")
    assert [a["id"] for a in oos.attributes] == ["viability"] and oos.status == OosStatus.REQUESTED
    with pytest.raises(ValidationError, match="after the QP"):
        services.oos_accept(actor=h.user("physician.mad"), oos=oos, statement="ok", credentials=h.creds("physician.mad"))
    with pytest.raises(ValidationError, match="accepted"):
        services.oos_notify(actor=h.user("qp"), oos=oos, recipient="sponsor", reference="S-1")
    with pytest.raises(PermissionDenied):
        services.oos_evaluate(actor=h.user("qa"), oos=oos, risk_evaluation="x", credentials=h.creds("qa"))
    oos = services.oos_evaluate(actor=h.user("qp"), oos=oos, risk_evaluation="Viability 35 %: lower dose of viable "
                                "cells; infusion risk acceptable.", credentials=h.creds("qp"))
    oos = services.oos_accept(actor=h.user("physician.mad"), oos=oos, credentials=h.creds("physician.mad"),
                              statement="I accept the product for my patient given the evaluation.")
    with pytest.raises(ValidationError, match="notified"):
        certify(b)
    with pytest.raises(ValidationError) as exc:
        services.oos_notify(actor=h.user("qa"), oos=oos, recipient="press", reference="x")
    assert "recipient" in exc.value.message_dict
    oos = services.oos_notify(actor=h.user("qa"), oos=oos, recipient="sponsor", reference="SP-2026-17")
    cert = certify(b)
    assert cert.oos_release_id == oos.pk
    # each stage's signature binds to its own stage and stays valid after the later ones
    from pocare.ledger.verify import signature_status

    sigs = Signature.objects.filter(record_type__in=["release.OosRelease", "release.OosEvaluation",
                                                     "release.OosAcceptance"], record_id=str(oos.pk))
    assert sorted(s.meaning for s in sigs) == ["approved", "authored", "reviewed"]
    assert all(signature_status(s)[0] for s in sigs)
    ctx = certificate_context(cert)
    assert ctx["oos"] == oos
    from django.template.loader import render_to_string

    html = render_to_string("release/certificate.html", ctx)
    assert "Released out of specification" in html and "SP-2026-17" in html and "OUT OF SPECIFICATION" in html


# --- certificate, pages, API ---------------------------------------------------------------------


def test_certificate_pdf_and_its_html_show_the_signature_manifestation_and_changes(client, login, ready):
    """P11-50 A11-8 ATMP-REL: the certificate prints product, batch, COI, DIN, patient, site, version,
    the checklist states, results with pending-after-release marked, corrections marked and the QP's
    printed name, date and time in UTC and the site's zone, and meaning; printing is a ledger event."""
    result = ready.qc_results.get(attribute_id="cd3")
    mfg.qc_result_correct(actor=h.user("qc.mad"), result=result, value="95", reason="Gate re-set",
                          credentials=h.creds("qc.mad"))
    rh.review_trail(ready)
    rh.review_exceptions(ready)
    cert = certify(ready)
    login("qp")
    response = client.post(f"/release/batches/{ready.reference}/certificate/", {"format": "html"})
    assert response.status_code == 200
    html = response.content.decode()
    qp = h.user("qp")
    for text in (qp.printed_name, "Released", " UTC", "Europe/Madrid", ready.reference, ready.order.coi,
                 ready.collection.din, ready.order.recipient_id, "Madrid", str(ready.masterfile_version),
                 "pending — result after release", "changed after first entry", "Gate re-set"):
        assert text in html, text
    before = Event.objects.filter(event_type="release.certificate_printed").count()
    response = client.post(f"/release/batches/{ready.reference}/certificate/")
    assert response.status_code in (200, 503)
    if response.status_code == 200:
        assert response.content.startswith(b"%PDF") and response["Content-Type"] == "application/pdf"
        assert Event.objects.filter(event_type="release.certificate_printed").count() == before + 1
    assert cert.pk


def test_release_page_queue_and_decision_form(client, login, ready):
    """POC-7 ATMP-REL: the QP sees the queue with the batch, the checklist with evidence links; the
    decision needs the confirmation; then the batch leaves the queue."""
    login("qp")
    page = client.get("/release/")
    assert page.status_code == 200 and ready.reference.encode() in page.content
    page = client.get(f"/release/batches/{ready.reference}/")
    assert page.status_code == 200 and b'id="line-audit_trail"' in page.content and b"decision-form" in page.content
    url = f"/release/batches/{ready.reference}/decision/"
    response = client.post(url, {"decision": "certify", "reason": "ok", "username": "qp", "password": rh_password()})
    assert response.status_code == 400 and b"Confirm the decision" in response.content
    response = client.post(url, {"decision": "certify", "reason": "ok", "username": "qp", "password": rh_password(),
                                 "confirm": "on"})
    assert response.status_code == 302
    assert Certification.objects.get(batch=ready).decision == "released"
    assert ready.reference not in [r.batch.reference for r in release_queue(h.user("qp"))]


def test_the_decision_is_not_preselected_and_each_result_shows_its_acceptance_criterion(client, login, ready):
    """POC-7 ATMP-REL: the QP chooses certify or reject (nothing is chosen for them, and a decision
    left unchosen is refused naming the field); the results table gives each attribute's criterion
    as the specification states it, never an empty "= None"."""
    import re

    login("qp")
    page = client.get(f"/release/batches/{ready.reference}/").content.decode()
    decision = re.search(r'<select name="decision".*?</select>', page, re.S)
    assert decision is not None and '<option value="" selected>' in decision.group(0)
    assert "= None" not in page and "<td><small>≥ 70 %</small></td>" in page  # viability, a range with no exact value
    response = client.post(f"/release/batches/{ready.reference}/decision/",
                           {"decision": "", "reason": "ok", "username": "qp", "password": rh_password(), "confirm": "on"})
    assert response.status_code == 400 and "Choose the decision" in response.content.decode()
    assert not Certification.objects.filter(batch=ready).exists()


def test_queue_shows_blocking_lines(ready):
    """ATMP-REL: the queue lists each batch's failing lines, oldest first."""
    from pocare.quality.services import deviation_raise

    deviation_raise(actor=h.user("operator.mad"), site=ready.site, title="Open one", description="x", batch=ready)
    row = next(r for r in release_queue(h.user("qp")) if r.batch == ready)
    assert [ln.id for ln in row.blocking] == ["deviations", "exceptions_review"] and row.stage == "certification"
    assert ready.reference not in [r.batch.reference for r in release_queue(h.user("qc.lis"))]


def rh_password() -> str:
    from tests.conftest import PASSWORD

    return PASSWORD


def test_api_checklist_queue_and_certify(client, login, ready):
    """POC-7 P11-200: the API gives the checklist and queue; certify needs user id and password;
    others are refused; bad input is a 400 naming the field; another site's batch is a 404."""
    login("operator.lis")
    assert client.get(f"/api/release/batches/{ready.reference}/checklist/").status_code == 404
    login("qa")
    data = client.get(f"/api/release/batches/{ready.reference}/checklist/").json()
    assert data["releasable"] and {ln["id"] for ln in data["lines"]} >= {"audit_trail", "exceptions_review"}
    assert client.post(f"/api/release/batches/{ready.reference}/certify/",
                       {"reason": "x", "username": "qa", "password": rh_password()}).status_code == 403
    login("qp")
    assert any(r["batch"] == ready.reference for r in client.get("/api/release/queue/").json())
    response = client.post(f"/api/release/batches/{ready.reference}/certify/", {"username": "qp", "password": "x"},
                           content_type="application/json")
    assert response.status_code == 400 and "reason" in response.json()
    response = client.post(f"/api/release/batches/{ready.reference}/certify/",
                           {"reason": "Meets spec", "username": "qp", "password": "wrong"},
                           content_type="application/json")
    assert response.status_code == 403
    response = client.post(f"/api/release/batches/{ready.reference}/certify/",
                           {"reason": "Meets spec", "username": "qp", "password": rh_password()},
                           content_type="application/json")
    assert response.status_code == 201 and response.json()["decision"] == "released"


def test_api_qc_review(client, login):
    """ATMP-REL P11-200: stage 1 over the API by the site's QC analyst, with user id and password."""
    b = rh.completed_batch("MAD")
    rh.review_exceptions(b)
    login("qc.mad")
    response = client.post(f"/api/release/batches/{b.reference}/qc-review/",
                           {"comment": "Reviewed", "username": "qc.mad", "password": rh_password()},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    assert stage(b) == "certification"


def test_oos_workflow_through_the_release_view(client, login):
    """ATMP-OOS P11-50: the physician requests and accepts, the QP evaluates, QA notifies — each on
    the release view, each signature shown."""
    b = _oos_batch()
    url = f"/release/batches/{b.reference}/"
    login("physician.mad")
    page = client.get(url)
    assert page.status_code == 200 and b"Sign the request" in page.content
    response = client.post(url + "oos/", {"clinical_justification": "No time to re-manufacture.",
                                          "username": "physician.mad", "password": rh_password()})
    assert response.status_code == 302
    oos = b.oos_releases.get()
    login("qp")
    assert b"Sign the risk evaluation" in client.get(url).content
    response = client.post(url + f"oos/{oos.pk}/evaluate/", {"risk_evaluation": "Acceptable.", "username": "qp",
                                                            "password": rh_password()})
    assert response.status_code == 302
    login("physician.mad")
    response = client.post(url + f"oos/{oos.pk}/accept/", {"statement": "", "username": "physician.mad",
                                                          "password": rh_password()})
    assert response.status_code == 400
    response = client.post(url + f"oos/{oos.pk}/accept/", {"statement": "Accepted.", "username": "physician.mad",
                                                          "password": rh_password()})
    assert response.status_code == 302
    login("operator.mad")
    assert client.post(url + f"oos/{oos.pk}/notify/", {"recipient": "sponsor", "reference": "X"}).status_code == 403
    login("qa")
    assert client.post(url + f"oos/{oos.pk}/notify/", {"recipient": "authority", "reference": "AEMPS-1"}).status_code \
        == 302
    page = client.get(url).content.decode()
    assert "authority notified — AEMPS-1" in page and page.count("signature-name") >= 3


def test_stage_one_through_the_release_view(client, login):
    """ATMP-REL P11-200: the site's QC analyst signs the review by exception and the QC review on
    the release view; a wrong password is refused on the form with nothing signed."""
    b = rh.completed_batch("MAD")
    url = f"/release/batches/{b.reference}/"
    login("qc.mad")
    page = client.get(url)
    assert page.status_code == 200 and b"Sign the review by exception" in page.content
    response = client.post(url + "exceptions-review/", {"exc-comment": "Looked.", "exc-username": "qc.mad",
                                                        "exc-password": "wrong"})
    assert response.status_code == 400 and stage(b) == "exceptions"
    response = client.post(url + "exceptions-review/", {"exc-comment": "Looked.", "exc-username": "qc.mad",
                                                        "exc-password": rh_password()})
    assert response.status_code == 302 and stage(b) == "qc_review"
    response = client.post(url + "qc-review/", {"qc-comment": "Reviewed.", "qc-password": rh_password()})
    assert response.status_code == 302 and stage(b) == "certification"
    login("manager.mad")
    assert client.post(url + "qc-review/", {"qc-comment": "x", "qc-password": rh_password()}).status_code == 403
