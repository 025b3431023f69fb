"""The pathway's services: eligibility against the master file's checklist, lost patients, the
stages read from the order's records, and the checklist kept in the master file."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.models import Event
from pocare.masterfile import schema
from pocare.masterfile.diff import diff_content
from pocare.patients import services
from pocare.patients.models import EligibilityAssessment, Stage
from pocare.patients.selectors import stage_of
from tests.manufacturing import helpers as mh
from tests.patients.pathway_helpers import answers, consented, eligible, linked, user

pytestmark = pytest.mark.django_db


def test_the_master_file_keeps_a_bounded_checklist_with_unique_ids_and_the_diff_shows_it():
    """The demo master file carries the CD19 CAR-T eligibility criteria; a duplicate id, an empty text
    or an unknown field is refused naming the field; a changed criterion shows in the diff."""
    from pocare.demo.masterfile import DOCUMENTS

    text = (DOCUMENTS / "cd19-cart-v1.yaml").read_text(encoding="utf-8")
    content = schema.document_content(schema.parse_document(text))
    ids = [c["id"] for c in schema.eligibility_criteria(content)]
    assert {"age", "diagnosis", "ecog", "organ-function", "no-cns", "no-infection"} <= set(ids)
    with pytest.raises(schema.DocumentError, match=r"eligibility\[\d+\]\.id: eligibility criterion id 'age' is used twice"):
        schema.parse_document(text + "  - {id: age, text: Again}\n")
    with pytest.raises(schema.DocumentError, match=r"eligibility\[\d+\]\.text"):
        schema.parse_document(text + "  - {id: extra, text: ''}\n")
    with pytest.raises(schema.DocumentError, match="unknown field 'weight'"):
        schema.parse_document(text + "  - {id: extra, text: Fit, weight: 2}\n")
    changed = {**content, "eligibility": [{**c, "text": "ECOG 0–2"} if c["id"] == "ecog" else c
                                          for c in content["eligibility"]]}
    diff = diff_content(content, changed)
    assert [(d.kind, d.key) for d in diff.eligibility] == [("changed", "ecog")]
    assert not diff.empty and diff.steps == []


def test_every_required_criterion_met_makes_the_referral_eligible_against_the_version_in_effect(referral):
    """An assessment keeps its answers and the master-file version they answered; the event names the
    pseudonym and the version, never the patient's name."""
    assessment = services.eligibility_assess(actor=user("physician.mad"), referral=referral,
                                             answers=answers(referral, caregiver=False), reason="Clinic review")
    referral.refresh_from_db()
    assert referral.stage == Stage.ELIGIBLE and assessment.eligible
    assert assessment.masterfile_version == services.eligibility_version(referral)
    assert assessment.answers["caregiver"] is False  # not required: recorded, not disqualifying
    event = Event.objects.filter(event_type="patients.eligibility_assessed").latest("pk")
    assert event.new["stage"] == "eligible" and event.new["not_met"] == ["caregiver"]
    assert "Lucía" not in str(event.new) and referral.patient.pseudonym in event.object_repr


def test_a_required_criterion_not_met_ends_the_pathway(referral):
    services.eligibility_assess(actor=user("navigator.mad"), referral=referral,
                                answers=answers(referral, no_cns=False), reason="Active CNS lymphoma on MRI")
    referral.refresh_from_db()
    assert referral.stage == Stage.INELIGIBLE
    with pytest.raises(ValidationError, match="not eligible"):
        services.eligibility_assess(actor=user("navigator.mad"), referral=referral, answers=answers(referral),
                                    reason="again")


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: {**a, "shoe-size": True}, "Unknown criteria: shoe-size"),
    (lambda a: {k: v for k, v in a.items() if k != "ecog"}, "not answered: ecog"),
    (lambda a: {**a, "ecog": "yes"}, "Answer ecog as met"),
    (lambda a: ["age"], "Answer each criterion"),
    (lambda a: {f"x{i}": True for i in range(500)}, "at most 60 criteria"),
])
def test_unknown_missing_or_malformed_answers_are_refused_and_nothing_is_stored(referral, change, message):
    with pytest.raises(ValidationError, match=message):
        services.eligibility_assess(actor=user("physician.mad"), referral=referral,
                                    answers=change(answers(referral)), reason="review")
    referral.refresh_from_db()
    assert referral.stage == Stage.REFERRED and not EligibilityAssessment.objects.filter(referral=referral).exists()


def test_only_the_treating_hospital_assesses(referral):
    for outsider in ("physician.lis", "qa", "operator.mad"):
        with pytest.raises(PermissionDenied):
            services.eligibility_assess(actor=user(outsider), referral=referral, answers=answers(referral),
                                        reason="review")


def test_a_patient_lost_before_treatment_keeps_why(referral):
    """The outcomes count the patients lost while waiting, and why."""
    referral = eligible(referral)
    with pytest.raises(ValidationError, match="Choose one of"):
        services.referral_lose(actor=user("navigator.mad"), referral=referral, lost_reason="bored", reason="x")
    services.referral_lose(actor=user("navigator.mad"), referral=referral, lost_reason="progressed",
                           reason="Rapid progression during bridging")
    referral.refresh_from_db()
    assert (referral.stage, referral.lost_reason) == (Stage.LOST, "progressed")
    with pytest.raises(ValidationError, match="lost before treatment"):
        services.referral_lose(actor=user("navigator.mad"), referral=referral, lost_reason="died", reason="x")


def test_stages_after_booking_follow_the_order_s_records(referral):
    """ATMP-TRACE: linked to its order, the referral is booked, then collected once the apheresis is
    recorded, in manufacture once the batch starts — read from custody and the batch record, and
    stored by the scheduled sync (only forward)."""
    referral = consented(referral)
    mh.lots("MAD", mh.world())
    order = mh.received_order("MAD")  # accepted, collected and received at the site
    referral = linked(referral, order)
    assert referral.stage == Stage.COLLECTED and referral.order == order
    operator = mh.user("operator.mad")
    from pocare.manufacturing import services as mfg

    mfg.batch_start(actor=operator, order=order, unit=mh.unit_for_a_whole_batch("MAD"),
                    presented_identifier=order.collections.get().din, credentials=mh.creds(operator))
    assert stage_of(referral) == Stage.MANUFACTURING and referral.stage == Stage.COLLECTED  # shown before stored
    assert services.referrals_stage_sync() >= 1
    referral.refresh_from_db()
    assert referral.stage == Stage.MANUFACTURING
    event = Event.objects.filter(event_type="patients.stage_changed").latest("pk")
    assert event.old["stage"] == "collected" and event.new["stage"] == "manufacturing"
    with pytest.raises(ValidationError, match="already has its order"):
        linked(referral, order)


def test_the_demo_has_patients_at_every_stage_at_each_hospital(people):
    """The demo (pocare.demo.patients): at each hospital, referrals at every stage before treatment,
    and the hospital's therapy orders linked so that the later stages show."""
    from pocare.demo import patients as demo
    from pocare.patients.models import Referral
    from tests.custody.helpers import accepted, collect, effective_at

    effective_at("MAD")
    order = accepted("MAD", recipient="MAD-PT-9001")
    collect(order)
    assert demo.load() > 0
    stages = set(Referral.objects.filter(patient__treating_site__code="MAD").values_list("stage", flat=True))
    assert stages >= {Stage.REFERRED, Stage.ELIGIBLE, Stage.INELIGIBLE, Stage.CONSENTED, Stage.WITHDRAWN,
                      Stage.LOST, Stage.COLLECTED}
    assert Referral.objects.get(order=order).patient.language == "es"
    assert set(Referral.objects.filter(patient__treating_site__code="LIS").values_list("patient__language",
                                                                                         flat=True)) == {"pt"}
    assert demo.load() == 0  # idempotent


def test_release_and_infusion_move_the_referral_and_the_infusion_is_day_0(referral):
    """ATMP-TRACE PAT-LTFU: the QP's certification shows as released, the completed infusion hand-off
    as infused, and its time is kept as day 0 of the follow-up."""
    from pocare.custody import services as custody
    from pocare.custody.models import HandoffKind
    from pocare.release import services as release
    from tests.release import helpers as rh

    batch = rh.ready_batch("MAD")
    referral = linked(consented(referral), batch.order)
    order = batch.order
    custody.handoff_record(actor=mh.user("operator.mad"), order=order, kind=HandoffKind.FRESH_HOLD,
                           presented_identifier=order.coi, site=batch.site, location="Fridge")
    rh.review_trail(batch)
    release.batch_certify(actor=mh.user("qp"), batch=batch, reason="Meets the master file.", credentials=mh.creds("qp"))
    assert stage_of(referral) == Stage.RELEASED
    for kind, who in ((HandoffKind.DISPATCH_TO_HOSPITAL, "operator.mad"), (HandoffKind.RECEIPT_AT_HOSPITAL,
                                                                          "physician.mad"),
                      (HandoffKind.INFUSION, "physician.mad")):
        custody.handoff_record(actor=mh.user(who), order=order, kind=kind, presented_identifier=order.coi,
                               site=batch.site, location="Haematology")
    from pocare.patients import tasks

    assert tasks.stage_sync(slot="")["moved"] >= 1
    referral.refresh_from_db()
    infusion = order.handoffs.get(kind=HandoffKind.INFUSION)
    assert referral.stage == Stage.INFUSED and referral.infused_at == infusion.occurred_at
