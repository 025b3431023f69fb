"""Change control: a change request names its risk (ICH Q9), sites, training and comparability
evidence, proposes the next version, and follows that version's lifecycle."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.models import Event, Meaning
from pocare.ledger.signing import signatures_for
from pocare.masterfile import services
from pocare.masterfile.events import MasterFileEvent
from pocare.masterfile.models import ChangeRequest, ChangeStatus, MasterFileVersion, RiskClass, VersionStatus
from pocare.masterfile.services import risk_class
from tests.masterfile.helpers import (
    V1_TEXT,
    V2_TEXT,
    carry_to_approved,
    creds,
    effective_v1,
    make_effective,
    raise_change,
    user,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("s", "p", "d", "expected"), [
    (1, 1, 1, RiskClass.LOW),
    (3, 1, 3, RiskClass.LOW),      # RPN 9
    (3, 2, 2, RiskClass.MEDIUM),   # RPN 12: the medium threshold
    (2, 3, 3, RiskClass.MEDIUM),   # RPN 18
    (3, 3, 4, RiskClass.MEDIUM),   # RPN 36
    (2, 5, 4, RiskClass.HIGH),     # RPN 40: the high threshold
    (4, 1, 1, RiskClass.HIGH),     # severity 4 is high whatever the RPN
    (5, 1, 1, RiskClass.HIGH),
    (3, 5, 2, RiskClass.MEDIUM),   # RPN 30
])
def test_risk_class_follows_severity_and_the_risk_priority_number(s, p, d, expected):
    """Q9-RISK: high if S ≥ 4 or RPN ≥ 40, medium if RPN ≥ 12, else low."""
    assert risk_class(s, p, d) == expected


def test_raising_a_change_computes_risk_training_and_creates_its_draft_version():
    """Q9-RISK Q10-PQS CMP-SITE A11-9: the request, its proposed version and their events, in one go."""
    cr = raise_change()
    assert cr.reference.startswith("CR-") and cr.status == ChangeStatus.DRAFT
    assert cr.risk_class == RiskClass.MEDIUM and cr.risk_priority == 12
    assert sorted(cr.sites.values_list("code", flat=True)) == ["LIS", "MAD"]
    assert cr.training_steps == ["ipc-day5", "expansion-harvest-decision", "harvest"]
    assert cr.base_version.number == 1
    version = MasterFileVersion.objects.get(change_request=cr)
    assert version.number == 2 and version.status == VersionStatus.DRAFT and version.author == user("qa2")
    raised = Event.objects.get(event_type=MasterFileEvent.CHANGE_RAISED, object_id=str(cr.pk))
    assert raised.new["risk_class"] == "medium" and raised.new["training_steps"] == cr.training_steps
    assert Event.objects.filter(event_type=MasterFileEvent.VERSION_DRAFTED, object_id=str(version.pk)).exists()


def test_added_steps_need_training_and_removed_ones_do_not():
    """P11-10i: operators are trained on what the change adds or changes."""
    text = V2_TEXT.replace("        - id: release-sampling\n", "        - id: release-sampling-v2\n")
    cr = raise_change(document=text)
    assert "release-sampling-v2" in cr.training_steps and "release-sampling" not in cr.training_steps


def test_a_change_to_the_specification_only_needs_no_training():
    """P11-10i: no step changed, so nobody needs training before the site changes over."""
    text = V1_TEXT.replace("acceptance: {min: 20}", "acceptance: {min: 25}")
    cr = raise_change(document=text, severity=2, probability=1, detectability=1)
    assert cr.training_steps == [] and cr.risk_class == RiskClass.LOW


def test_an_identical_document_is_not_a_change():
    """Q10-PQS: a change request must change something."""
    effective_v1()
    with pytest.raises(ValidationError, match="same as"):
        raise_change(document=V1_TEXT)


def test_medium_and_high_risk_changes_must_state_comparability_evidence():
    """CMP-SITE Q9-RISK: formality follows risk."""
    with pytest.raises(ValidationError) as caught:
        raise_change(comparability_evidence="")
    assert "comparability_evidence" in caught.value.message_dict
    assert raise_change(comparability_evidence="", severity=1, probability=2, detectability=2).risk_class == "low"


@pytest.mark.parametrize(("field", "value"), [("severity", 0), ("probability", 6), ("detectability", "x"),
                                             ("severity", True)])
def test_scores_outside_one_to_five_are_refused_naming_the_field(field, value):
    """Q9-RISK: scores are on 1–5 scales."""
    before = ChangeRequest.objects.count()
    with pytest.raises(ValidationError) as caught:
        raise_change(**{field: value})
    assert field in caught.value.message_dict and "1 to 5" in caught.value.message_dict[field][0]
    assert ChangeRequest.objects.count() == before


def test_a_change_needs_sites_title_description_and_reason():
    """Q10-PQS: a change request names what changes, why, and where."""
    effective_v1()
    with pytest.raises(ValidationError) as caught:
        raise_change(sites=(), title=" ", description="")
    assert {"sites", "title", "description"} <= set(caught.value.message_dict)
    with pytest.raises(ValidationError) as caught:
        raise_change(reason="")
    assert "reason" in caught.value.message_dict


def test_a_site_manager_raises_changes_for_their_own_site_only():
    """P11-10g: site people act at their own site."""
    with pytest.raises(ValidationError, match="only for your own site"):
        raise_change(actor="manager.mad", sites=("MAD", "LIS"))
    cr = raise_change(actor="manager.mad", sites=("MAD",))
    assert cr.raised_by == user("manager.mad")


def test_operators_the_qp_and_inspectors_cannot_raise_changes():
    """P11-10g: raising changes is for QA and site managers."""
    for who in ("operator.mad", "qp", "inspector", "qc.mad"):
        with pytest.raises(PermissionDenied):
            raise_change(actor=who, sites=("MAD",))


def test_a_change_follows_its_version_submitted_approved_implemented():
    """Q10-PQS POC-4 A11-9: the request is approved with its version by the QP and implemented when effective."""
    cr = raise_change()
    cr = services.change_request_submit(actor=user("qa2"), change_request=cr, credentials=creds("qa2"),
                                        reason="ready")
    assert cr.status == ChangeStatus.SUBMITTED
    version = MasterFileVersion.objects.get(change_request=cr)
    services.version_review(actor=user("qa"), version=version, credentials=creds("qa"), reason="ok")
    cr = services.change_request_approve(actor=user("qp"), change_request=cr, credentials=creds("qp"), reason="ok")
    assert cr.status == ChangeStatus.APPROVED and cr.decided_at is not None
    make_effective(MasterFileVersion.objects.get(change_request=cr))
    cr.refresh_from_db()
    assert cr.status == ChangeStatus.IMPLEMENTED
    types = set(Event.objects.filter(object_type="masterfile.ChangeRequest", object_id=str(cr.pk))
                .values_list("event_type", flat=True))
    assert {MasterFileEvent.CHANGE_RAISED, MasterFileEvent.CHANGE_SUBMITTED, MasterFileEvent.CHANGE_APPROVED,
            MasterFileEvent.CHANGE_IMPLEMENTED} <= types


def test_the_three_signers_rule_holds_for_changes_raised_by_a_site_manager():
    """POC-4 P11-10g: a site manager authors their change; QA reviews; the QP approves."""
    cr = raise_change(actor="manager.mad", sites=("MAD",))
    version = carry_to_approved(MasterFileVersion.objects.get(change_request=cr))
    assert [s.signer_username for s in signatures_for(version).order_by("id")] == ["manager.mad", "qa", "qp"]


def test_a_signature_on_the_version_also_binds_the_change_requests_assessment():
    """P11-70: the QP approves the risk, sites and training together with the content."""
    cr = raise_change()
    version = carry_to_approved(MasterFileVersion.objects.get(change_request=cr))
    from pocare.ledger.verify import signature_status

    sig = signatures_for(version).get(meaning=Meaning.APPROVED)
    assert signature_status(sig)[0]
    ChangeRequest.objects.filter(pk=cr.pk).update(risk_class="low")  # lint: allow tampering on purpose
    assert signature_status(sig) == (False, "the record changed after it was signed")


def test_a_rejected_change_stops_its_version():
    """Q10-PQS: rejection is signed and final; the proposed version never goes further."""
    cr = raise_change()
    services.change_request_submit(actor=user("qa2"), change_request=cr, credentials=creds("qa2"), reason="r")
    cr = services.change_request_reject(actor=user("qp"), change_request=cr, credentials=creds("qp"),
                                        reason="evidence insufficient")
    assert cr.status == ChangeStatus.REJECTED
    version = MasterFileVersion.objects.get(change_request=cr)
    assert version.status == VersionStatus.DRAFT
    assert signatures_for(cr).get().meaning == Meaning.REJECTED
    with pytest.raises(ValidationError, match="rejected"):
        services.version_submit(actor=user("qa2"), version=version, credentials=creds("qa2"), reason="again")
    with pytest.raises(ValidationError):
        services.change_request_reject(actor=user("qa"), change_request=cr, credentials=creds("qa"), reason="x")


def test_site_people_cannot_reject_changes():
    """P11-10g: rejecting a change is for QA and the QP."""
    cr = raise_change(actor="manager.mad", sites=("MAD",))
    with pytest.raises(PermissionDenied):
        services.change_request_reject(actor=user("manager.mad"), change_request=cr, credentials=creds("manager.mad"),
                                       reason="withdraw")


def test_a_change_based_on_a_superseded_version_cannot_be_made_effective():
    """POC-4: two changes raised on v1 cannot both become effective; the second must be raised again."""
    first = raise_change()
    second = raise_change(document=V1_TEXT.replace("acceptance: {min: 20}", "acceptance: {min: 25}"),
                          severity=1, probability=1, detectability=1)
    make_effective(carry_to_approved(MasterFileVersion.objects.get(change_request=first)))
    approved = carry_to_approved(MasterFileVersion.objects.get(change_request=second))
    with pytest.raises(ValidationError, match="raise the change again"):
        make_effective(approved)
