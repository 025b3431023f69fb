"""Recall (SUP-RECALL, ATMP-TRACE): from a supplier's lot to every batch, product and patient it reached and
back; a recall signed by Control Site QA holds the lot, the unreleased batches and their products, tells
QA, the QP, the sites and the treating hospitals, and is closed signed with its outcome."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pocare.custody import services as custody
from pocare.custody.models import HandoffKind
from pocare.ledger.models import Event, Signature
from pocare.ledger.signing import SigningCredentials, SigningRefused
from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import Batch, MaterialLot, MaterialUse
from pocare.network.models import Site
from pocare.quality.models import Notification
from pocare.release import services as release
from pocare.release.checklist import release_checklist
from pocare.supply import recall as recalls
from pocare.supply.models import Recall, RecallStatus
from tests.conftest import PASSWORD
from tests.manufacturing import helpers as h
from tests.release import helpers as rh
from tests.supply import helpers as s


def _lot_of(batch: Batch, material_code: str | None = None) -> MaterialLot:
    uses = MaterialUse.objects.filter(step__batch=batch).select_related("lot").order_by("pk")
    if material_code:
        uses = uses.filter(material_code=material_code)
    return uses.first().lot


def _recall(lot: MaterialLot, *, by: str = "qa", reason: str = "Supplier notice SN-2026-17: endotoxin above "
                                                                  "specification in this lot") -> Recall:
    return recalls.recall_open(actor=h.user(by), material_code=lot.material_code, lot_number=lot.lot_number,
                               reason=reason, credentials=h.creds(by))


@pytest.mark.django_db
def test_a_lot_is_traced_to_every_batch_and_patient_and_each_patient_back_to_every_lot():
    """SUP-RECALL ATMP-TRACE: the forward trace of a lot used by two batches names both batches, their
    chains of identity and pseudonyms; the back trace of each patient lists exactly the lots recorded at
    their batch's steps; a lot used by none names nobody."""
    first, second = rh.completed_batch("MAD"), rh.completed_batch("MAD")
    lot = _lot_of(first)
    assert _lot_of(second, lot.material_code) == lot  # the site's released lot is used by both
    trace = recalls.lot_trace(material_code=lot.material_code, lot_number=lot.lot_number)
    assert trace.batches == sorted([first.reference, second.reference])
    assert trace.patients == sorted({first.order.recipient_id, second.order.recipient_id})
    assert {r.coi for r in trace.reached} == {first.order.coi, second.order.coi}
    assert [lt.site for lt in trace.lots] == ["MAD"]
    assert {r.stage for r in trace.reached} == {"awaiting certification"}
    for batch in (first, second):
        back = recalls.patient_trace(identifier=batch.order.coi)
        recorded = set(MaterialUse.objects.filter(step__batch=batch).values_list("lot__material_code",
                                                                                  "lot__lot_number"))
        assert {(r.material_code, r.lot_number) for r in back.reached} == recorded and len(recorded) > 1
        assert back.batches == [batch.reference]
        assert recalls.patient_trace(identifier=batch.reference).reached == back.reached
    unused = h.lots("LIS", h.world())[lot.material_code]
    assert recalls.lot_trace(material_code=unused.material_code, lot_number=unused.lot_number).reached == []


@pytest.mark.django_db
def test_a_recall_holds_certification_and_dispatch_until_it_is_closed_signed():
    """SUP-RECALL ATMP-REL: once QA recalls a lot (signed), the release checklist of an unreleased batch that
    used it fails on "Holds from other apps" naming the recall, and the QP cannot certify; a certified
    product made with it is not dispatched. Closing the recall (signed, with its outcome) lifts both."""
    held, shipped = rh.ready_batch("MAD"), rh.ready_batch("MAD")
    release.batch_certify(actor=h.user("qp"), batch=shipped, reason="Meets the master file.",
                          credentials=h.creds("qp"))
    custody.handoff_record(actor=h.user("operator.mad"), order=shipped.order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=shipped.order.coi, site=shipped.site, location="Fridge")
    assert release_checklist(held).line("holds").state == "pass"
    lot = _lot_of(held)
    recall = _recall(lot)
    assert recall.reference.startswith("RCL-") and recall.status == RecallStatus.OPEN
    line = release_checklist(held).line("holds")
    assert line.state == "fail" and recall.reference in line.detail and "endotoxin" in line.detail
    with pytest.raises(ValidationError, match=recall.reference):
        release.batch_certify(actor=h.user("qp"), batch=held, reason="Meets the master file.",
                              credentials=h.creds("qp"))
    with pytest.raises(ValidationError, match=recall.reference):
        custody.handoff_record(actor=h.user("operator.mad"), order=shipped.order,
                               kind=HandoffKind.DISPATCH_TO_HOSPITAL, presented_identifier=shipped.order.coi,
                               site=shipped.site, location="Courier")
    stages = {r.batch: (r.stage, r.held) for r in recalls.lot_trace(material_code=lot.material_code,
                                                                      lot_number=lot.lot_number).reached}
    assert stages[held.reference] == ("awaiting certification", True)
    assert stages[shipped.reference] == ("certified, not dispatched", True)
    # Opened once, signed, in the ledger with what it reached.
    with pytest.raises(ValidationError, match="already recalled"):
        _recall(lot)
    event = Event.objects.get(event_type="supply.recall_opened", object_id=str(recall.pk))
    assert set(event.new["batches"]) >= {held.reference, shipped.reference}
    assert Signature.objects.filter(record_type="supply.Recall", record_id=str(recall.pk), meaning="approved", signer=h.user("qa")).exists()

    closed = recalls.recall_close(actor=h.user("qa"), recall=recall, credentials=h.creds("qa"),
                                  outcome="Supplier withdrew the notice after retesting: lot within specification.")
    assert closed.status == RecallStatus.CLOSED and closed.closed_by == h.user("qa")
    assert release_checklist(held).line("holds").state == "pass"
    custody.handoff_record(actor=h.user("operator.mad"), order=shipped.order, kind=HandoffKind.DISPATCH_TO_HOSPITAL,
                           presented_identifier=shipped.order.coi, site=shipped.site, location="Courier")
    with pytest.raises(ValidationError, match="was closed"):
        recalls.recall_close(actor=h.user("qa"), recall=recall, outcome="again", credentials=h.creds("qa"))
    assert Signature.objects.filter(record_type="supply.Recall", record_id=str(recall.pk), meaning="approved").count() == 2


@pytest.mark.django_db
def test_a_recalled_lot_is_neither_used_at_a_step_nor_issued_nor_released():
    """SUP-RECALL SUP-STOCK: at the step a recalled lot is refused naming the material and the recall, and
    nothing is recorded; stock of it is not issued to a batch; a recalled lot still in quarantine at another
    site is not released."""
    from tests.supply.test_step import at_count_step, refused_at_step

    batch = at_count_step()
    lot = s.received(10)
    _recall(lot)
    assert "recalled" in refused_at_step(batch, lot)
    from pocare.supply import services

    with pytest.raises(ValidationError, match="recalled"):
        services.stock_issue(actor=h.user("qc.mad"), location=s.store("MAD"), lot=lot, quantity=1, batch=batch,
                             reason="Spare")
    quarantined = mfg.lot_receive(actor=h.user("qc.lis"), site=Site.objects.get(code="LIS"),
                                  material_code=lot.material_code, name="5 mL syringe", lot_number=lot.lot_number,
                                  expiry_date=lot.expiry_date, reason="Delivery", supplier=lot.supplier)
    with pytest.raises(ValidationError, match="recalled"):
        mfg.lot_decide(actor=h.user("qc.lis"), lot=quarantined, decision="released", reason="CoA checked",
                       credentials=h.creds("qc.lis"))


@pytest.mark.django_db
def test_a_recall_tells_qa_the_qp_the_sites_and_only_the_treating_hospitals():
    """SUP-RECALL: the recall notifies Control Site QA and the QP, the materials people of the site holding
    the lot, and the physicians and navigators of the hospital treating a patient reached (by pseudonym and
    COI only); a hospital whose patients it did not reach hears nothing."""
    batch = rh.completed_batch("MAD")
    lot = _lot_of(batch)
    recall = _recall(lot)
    told = set(Notification.objects.filter(subject__startswith=f"Recall {recall.reference}")
               .values_list("recipient__username", flat=True))
    assert {"qa", "qp", "qc.mad", "manager.mad", "physician.mad", "navigator.mad"} <= told
    assert not {u for u in told if u.endswith((".lis", ".gro"))}
    hospital = Notification.objects.get(subject__startswith=f"Recall {recall.reference}",
                                        recipient__username="physician.mad")
    assert batch.order.coi in hospital.body and batch.order.recipient_id in hospital.body
    assert hospital.url == reverse("custody:order", args=[batch.order.pk])


@pytest.mark.django_db
def test_only_control_site_qa_recalls_signed_and_a_refused_signature_stores_nothing():
    """SUP-RECALL P11-200: the QP and a site manager may not open a recall; a wrong password stores no
    recall, no recall event (the refused signature is itself in the ledger), no notification; a lot no site received is not recalled."""
    lot = s.received(5)
    for who in ("qp", "manager.mad", "inspector"):
        with pytest.raises(PermissionDenied):
            _recall(lot, by=who)
    opened = Event.objects.filter(event_type="supply.recall_opened")
    before = (Recall.objects.count(), opened.count(), Notification.objects.count())
    with pytest.raises(SigningRefused):
        recalls.recall_open(actor=h.user("qa"), material_code=lot.material_code, lot_number=lot.lot_number,
                            reason="Notice", credentials=SigningCredentials(password="wrong", username="qa"))
    assert (Recall.objects.count(), opened.count(), Notification.objects.count()) == before
    with pytest.raises(ValidationError, match="nothing here to recall"):
        recalls.recall_open(actor=h.user("qa"), material_code=lot.material_code, lot_number="NEVER-RECEIVED",
                            reason="Notice", credentials=h.creds("qa"))
    with pytest.raises(ValidationError) as refused:
        recalls.recall_open(actor=h.user("qa"), material_code=lot.material_code, lot_number="L\x00T",
                            reason="Notice", credentials=h.creds("qa"))
    assert "lot_number" in refused.value.message_dict


@pytest.mark.django_db
def test_the_trace_reads_in_a_fixed_number_of_queries():
    """SUP-RECALL: the forward trace costs the same number of queries for one batch as for three (the
    benchmark runs it over ten years of a large network, benchmarks/supply.py)."""
    first = rh.completed_batch("MAD")
    lot = _lot_of(first)

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            trace = recalls.lot_trace(material_code=lot.material_code, lot_number=lot.lot_number)
        return len(ctx.captured_queries), len(trace.batches)

    one = count()
    rh.completed_batch("MAD")
    rh.completed_batch("MAD")
    _recall(lot)
    # Lots, stock, uses, hand-offs, recalls and the lot's transfers between sites.
    assert count() == (one[0], 3) and one == (one[0], 1) and one[0] <= 7


# --- the pages ------------------------------------------------------------------------------------------


def _client(username: str) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(h.user(username))
    return client


@pytest.mark.django_db
def test_qa_traces_a_lot_recalls_it_from_the_page_and_exports_the_trace():
    """SUP-RECALL: QA's trace page shows the batch and patient a lot reached and offers the recall; signing it
    opens the recall and its page shows the hold; the CSV export carries the same rows."""
    batch = rh.completed_batch("MAD")
    lot = _lot_of(batch)
    qa = _client("qa")
    query = {"material_code": lot.material_code, "lot_number": lot.lot_number}
    page = qa.get(reverse("supply:trace"), query)
    assert page.status_code == 200
    text = page.content.decode()
    assert batch.reference in text and batch.order.recipient_id in text and "Recall this lot" in text
    answer = qa.post(reverse("supply:recalls"), {**query, "reason": "Supplier notice SN-9", "username": "qa",
                                                 "password": PASSWORD})
    recall = Recall.objects.get()
    assert answer.status_code == 302 and answer.url == reverse("supply:recall", args=[recall.reference])
    shown = qa.get(answer.url).content.decode()
    assert "Supplier notice SN-9" in shown and "awaiting certification, held" in shown
    assert "Close the recall" in shown
    csv = b"".join(qa.get(reverse("supply:trace"), {**query, "export": "csv"}).streaming_content).decode()
    header, *rows = csv.strip().splitlines()
    assert header.startswith("material,lot_number") and len(rows) == MaterialUse.objects.filter(lot=lot).count()
    assert all(recall.reference in row and batch.order.coi in row for row in rows)
    # The QP reads the recall but neither opens nor closes one.
    qp = _client("qp")
    assert "Close the recall" not in qp.get(answer.url).content.decode()
    assert qp.post(answer.url, {"outcome": "x", "password": PASSWORD}).status_code == 403


@pytest.mark.django_db
def test_a_site_sees_only_its_own_batches_in_a_trace():
    """SUP-RECALL A11-IAM: the same lot number at two sites: the QC analyst at LIS sees LIS's lot and batch
    only; Control Site QA sees both."""
    mad = rh.completed_batch("MAD")
    lot = _lot_of(mad)
    MaterialLot.objects.filter(site__code="LIS", material_code=lot.material_code).update(lot_number=lot.lot_number)
    h.lots("LIS", h.world())
    MaterialLot.objects.filter(site__code="LIS", material_code=lot.material_code).update(lot_number=lot.lot_number)
    lis = rh.completed_batch("LIS")
    assert _lot_of(lis, lot.material_code).lot_number == lot.lot_number
    for who, batches in (("qc.lis", [lis.reference]), ("qa", sorted([mad.reference, lis.reference]))):
        trace = recalls.lot_trace(material_code=lot.material_code, lot_number=lot.lot_number, user=h.user(who))
        assert trace.batches == batches
    page = _client("qc.lis").get(reverse("supply:trace"), {"material_code": lot.material_code,
                                                           "lot_number": lot.lot_number}).content.decode()
    assert lis.reference in page and mad.reference not in page and "Recall this lot" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field"), [
    ({"material_code": "NOT-A-MATERIAL", "lot_number": "X"}, "material_code"),
    ({"material_code": s.SYRINGE}, "lot_number"),
    ({"lot_number": "X"}, "material_code"),
    ({"patient": "P\x00T"}, "patient"),
    ({"patient": "9" * 400}, "patient"),
    ({"patient": "PT-1", "lot_number": "X", "material_code": s.SYRINGE}, "patient"),
    ({"lot_number": "L" * 61, "material_code": s.SYRINGE}, "lot_number"),
])
def test_a_bad_trace_is_a_400_naming_the_field(query, field):
    """SUP-RECALL: a trace asked with a material not in any bill, half a lot, a NUL, 400 digits, both a lot and
    a patient, or an over-long lot number is a 400 naming the field; the page still works after."""
    h.world()
    qa = _client("qa")
    answer = qa.get(reverse("supply:trace"), query)
    assert answer.status_code == 400
    # The form names the field under it; a NUL or a 400-digit number is refused before the view by the
    # security middleware, whose page names the parameter.
    assert f'id="id_{field}_error"' in answer.content.decode() or f"Field <strong>{field}</strong>" in answer.content.decode()
    assert qa.get(reverse("supply:trace")).status_code == 200


@pytest.mark.django_db
def test_recall_pages_refuse_what_they_should():
    """SUP-RECALL: an unknown recall is a 404; a recall posted without a reason or with a wrong password is a
    400 naming the field and opens nothing; a physician may not see the trace."""
    lot = s.received(5)
    qa = _client("qa")
    assert qa.get("/supply/recalls/RCL-1999-0001/").status_code == 404
    assert qa.get("/supply/recalls/%00/").status_code == 400  # the security middleware's refusal
    query = {"material_code": lot.material_code, "lot_number": lot.lot_number}
    empty = qa.post(reverse("supply:recalls"), {**query, "reason": "", "username": "qa", "password": PASSWORD})
    assert empty.status_code == 400 and 'id="id_reason_error"' in empty.content.decode()
    wrong = qa.post(reverse("supply:recalls"), {**query, "reason": "Notice", "username": "qa", "password": "nope"})
    assert wrong.status_code == 400 and 'id="id_password_error"' in wrong.content.decode()
    assert not Recall.objects.exists()
    assert _client("physician.mad").get(reverse("supply:trace")).status_code == 403
    assert qa.get(reverse("supply:recalls")).status_code == 200


@pytest.mark.skipif("connection.vendor == 'sqlite'",
                    reason="SQLite has one write lock for the whole database: no two recalls are opened at once")
def test_two_recalls_of_one_lot_at_once_one_is_opened_the_other_is_told_and_other_lots_are_numbered_apart(tx_db):
    """SUP-RECALL: two people recall the same lot at the same moment: one recall is opened, the other is
    refused naming the lot; two different lots recalled at once both open, with different numbers."""
    import threading

    from django.db import close_old_connections

    lots = [s.received(5), s.received(5), s.received(5)]

    def race(targets: list[MaterialLot]) -> list[object]:
        barrier = threading.Barrier(len(targets))
        outcomes: list[object] = [None] * len(targets)

        def qa(i: int) -> None:
            close_old_connections()
            try:
                barrier.wait(timeout=30)
                outcomes[i] = _recall(targets[i])
            except Exception as exc:
                outcomes[i] = exc
            finally:
                connection.close()

        threads = [threading.Thread(target=qa, args=(i,)) for i in range(len(targets))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        return outcomes

    same = race([lots[0], lots[0]])
    refused = [o for o in same if isinstance(o, ValidationError)]
    assert len(refused) == 1 and "lot_number" in refused[0].message_dict, same
    assert Recall.objects.filter(lot_number=lots[0].lot_number).count() == 1
    apart = race([lots[1], lots[2]])
    assert all(isinstance(o, Recall) for o in apart), apart
    assert len({o.reference for o in apart}) == 2  # type: ignore[union-attr]
