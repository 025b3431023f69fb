"""The questions that the apps above (patients; the coming supply) answer, asked by release and by
the step: an answer holds the batch or the lot, with the answerer's reason, through the real
services (docs/architecture.md, "Asking upward"). The patients app's own answers are shown in
tests/patients/test_consent.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from pocare.custody import services as custody
from pocare.custody.models import HandoffKind
from pocare.custody.questions import DISPATCH_HOLDS
from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import MaterialLot
from pocare.manufacturing.questions import LOT_HOLDS
from pocare.release import services
from pocare.release.checklist import release_checklist
from pocare.release.models import Certification
from pocare.release.questions import CERTIFICATION_HOLDS
from tests.manufacturing import helpers as h
from tests.release import helpers as rh

pytestmark = pytest.mark.django_db


def consent_withdrawn(batch: Any) -> list[str]:
    return [f"Consent withdrawn for order {batch.order.coi}."]


def lot_recalled(*, lot: MaterialLot, at: Any) -> str | None:
    return f"{lot} is recalled." if lot.lot_number.startswith("RECALL") else None


def consent_hold_on_dispatch(order: Any) -> str | None:
    return "Consent withdrawn: the product is held."


@pytest.fixture
def answering() -> Iterator[Any]:
    added: list[tuple[Any, Any]] = []

    def register(question: Any, answerer: Any) -> None:
        question.register(answerer)
        added.append((question, answerer))

    yield register
    for question, answerer in added:
        question.unregister(answerer)


def test_while_nothing_holds_the_batch_the_holds_line_passes():
    """ATMP-REL: the patients app (a withdrawn consent) and the supply app (a recalled lot) answer the
    certification question; for a batch nothing holds, the checklist's line "Holds from other apps" passes."""
    batch = rh.ready_batch("MAD")
    assert sorted(CERTIFICATION_HOLDS.answerers) == ["pocare.patients.answers.consent_certification_holds",
                                                     "pocare.supply.answers.recall_certification_holds"]
    assert release_checklist(batch).line("holds").state == "pass"


def test_a_hold_from_an_app_above_release_fails_the_checklist_and_the_qp_cannot_certify(answering):
    """ATMP-REL POC-7: an answer to release's question is a failing checklist line with its reason,
    and certification is refused while it holds; once nothing holds, the QP certifies."""
    batch = rh.ready_batch("MAD")
    answering(CERTIFICATION_HOLDS, consent_withdrawn)
    line = release_checklist(batch).line("holds")
    assert line.state == "fail" and line.detail == f"Consent withdrawn for order {batch.order.coi}."
    with pytest.raises(ValidationError, match="Consent withdrawn"):
        services.batch_certify(actor=h.user("qp"), batch=batch, reason="Meets the master file.",
                               credentials=h.creds("qp"))
    assert not Certification.objects.filter(batch=batch).exists()
    CERTIFICATION_HOLDS.unregister(consent_withdrawn)
    cert = services.batch_certify(actor=h.user("qp"), batch=batch, reason="Meets the master file.",
                                  credentials=h.creds("qp"))
    assert cert.decision == "released"


def test_a_lot_held_by_an_app_above_manufacturing_is_refused_at_the_step(answering):
    """ATMP-TRACE P11-10h: a released, unexpired lot that an app above holds (a recall) is refused
    at the step, naming the material and the reason; another lot of the same material is taken."""
    batch = h.started_batch("MAD")
    while mfg.next_step(batch)[1]["id"] != "apheresis-count":  # the first step that uses syringes
        h.do_step(batch)
    answering(LOT_HOLDS, lot_recalled)
    recalled = mfg.lot_receive(actor=h.user("qc.mad"), site=batch.site, material_code="SYR-5ML", name="Syringe",
                               lot_number="RECALL-1", reason="receipt",
                               expiry_date=timezone.now().date() + dt.timedelta(days=30))
    mfg.lot_decide(actor=h.user("qc.mad"), lot=recalled, decision="released", reason="ok", credentials=h.creds("qc.mad"))
    with pytest.raises(ValidationError) as refused:
        h.do_step(batch, materials={"SYR-5ML": "RECALL-1"})
    assert "is recalled" in " ".join(refused.value.message_dict["materials.SYR-5ML"])
    h.do_step(batch)  # the site's other released lot of syringes is not held


def test_a_second_dispatch_hold_adds_its_reason_to_release_s(answering):
    """ATMP-REL: custody asks every app above it; a consent hold keeps a certified product home."""
    batch = rh.ready_batch("MAD")
    custody.handoff_record(actor=h.user("operator.mad"), order=batch.order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=batch.order.coi, site=batch.site, location="Fridge")
    rh.review_trail(batch)  # the fresh hold is part of the batch's trail (A11-12)
    services.batch_certify(actor=h.user("qp"), batch=batch, reason="Meets the master file.", credentials=h.creds("qp"))
    answering(DISPATCH_HOLDS, consent_hold_on_dispatch)
    with pytest.raises(ValidationError, match="Consent withdrawn: the product is held"):
        custody.handoff_record(actor=h.user("operator.mad"), order=batch.order, kind=HandoffKind.DISPATCH_TO_HOSPITAL,
                               presented_identifier=batch.order.coi, site=batch.site, location="Courier")
