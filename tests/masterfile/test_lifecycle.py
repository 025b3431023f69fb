"""The master-file version lifecycle: draft → in review → approved → effective → superseded, each
step signed with its meaning by the right person; author, reviewer and QP are three people."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.canonical import content_hash
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import Event, Meaning, Signature
from pocare.ledger.signing import SigningRefused, signatures_for
from pocare.ledger.verify import signature_status
from pocare.masterfile import services
from pocare.masterfile.events import MasterFileEvent
from pocare.masterfile.models import VERSION_TRANSITIONS, MasterFileVersion, VersionStatus
from tests.masterfile.helpers import V1_TEXT, creds, draft_v1, make_effective, product, user

pytestmark = pytest.mark.django_db


def _events(obj, event_type):
    return Event.objects.filter(object_type=obj._meta.label, object_id=str(obj.pk), event_type=event_type)


def _submit(v, who="qa2"):
    return services.version_submit(actor=user(who), version=v, credentials=creds(who), reason="ready for review")


def _review(v, who="qa"):
    return services.version_review(actor=user(who), version=v, credentials=creds(who), reason="checked")


def _approve(v, who="qp"):
    return services.version_approve(actor=user(who), version=v, credentials=creds(who), reason="approved")


def _return(v, who="qa"):
    return services.version_return(actor=user(who), version=v, credentials=creds(who), reason="fix step 3")


def test_a_version_goes_through_its_whole_lifecycle_with_three_signers_and_an_event_each_step():
    """POC-4 P11-50 P11-10f A11-9: draft → in review → approved → effective, each signed with its meaning."""
    v = draft_v1()
    assert v.status == VersionStatus.DRAFT and v.number == 1 and v.author == user("qa2")
    assert v.content_hash == content_hash(v.content)
    assert _events(v, MasterFileEvent.VERSION_DRAFTED).get().chain == "CTRL"
    v = _submit(v)
    assert v.status == VersionStatus.IN_REVIEW
    v = _review(v)
    assert v.status == VersionStatus.IN_REVIEW and v.reviewer == user("qa")
    v = _approve(v)
    assert v.status == VersionStatus.APPROVED and v.approver == user("qp")
    v = make_effective(v)
    assert v.status == VersionStatus.EFFECTIVE and v.effective_at is not None
    sigs = list(signatures_for(v).order_by("id"))
    assert [(s.signer_username, s.meaning) for s in sigs] == [
        ("qa2", Meaning.AUTHORED), ("qa", Meaning.REVIEWED), ("qp", Meaning.APPROVED), ("qa", Meaning.APPROVED)]
    assert all(signature_status(s) == (True, "") for s in sigs)
    assert sigs[-1].event.reason.startswith("made effective")
    for event_type in (MasterFileEvent.VERSION_SUBMITTED, MasterFileEvent.VERSION_REVIEWED,
                       MasterFileEvent.VERSION_APPROVED, MasterFileEvent.VERSION_EFFECTIVE):
        assert _events(v, event_type).count() == 1, event_type
    assert _events(v, LedgerEvent.SIGNED).count() == 4


def test_making_a_version_effective_supersedes_the_one_before():
    """POC-4: one version is effective in the network; the previous one is superseded with its time."""
    from tests.masterfile.helpers import carry_to_approved, raise_change

    cr = raise_change()
    v1 = MasterFileVersion.objects.get(number=1)
    v2 = make_effective(carry_to_approved(cr.version))
    v1.refresh_from_db()
    assert v1.status == VersionStatus.SUPERSEDED and v1.superseded_at == v2.effective_at
    assert _events(v1, MasterFileEvent.VERSION_SUPERSEDED).get().new["by"] == 2


def test_the_transition_table_is_what_the_services_enforce():
    """P11-10f: the sequence of the lifecycle is enforced; no step can be skipped."""
    assert VERSION_TRANSITIONS[VersionStatus.DRAFT] == {VersionStatus.IN_REVIEW}
    assert VERSION_TRANSITIONS[VersionStatus.SUPERSEDED] == frozenset()


def test_a_draft_cannot_be_reviewed_approved_or_made_effective():
    """P11-10f: a draft must be authored and submitted first."""
    v = draft_v1()
    for call in (lambda: _review(v), lambda: _approve(v),
                 lambda: services.version_make_effective(actor=user("qa"), version=v, credentials=creds("qa"),
                                                         reason="x")):
        with pytest.raises(ValidationError) as caught:
            call()
        assert "status" in caught.value.message_dict
    v.refresh_from_db()
    assert v.status == VersionStatus.DRAFT and not signatures_for(v).exists()


def test_approval_needs_a_review_first():
    """P11-10f: the QP approves only a reviewed version."""
    v = _submit(draft_v1())
    with pytest.raises(ValidationError, match="not been reviewed"):
        _approve(v)


def test_a_version_cannot_be_reviewed_twice_or_submitted_again_while_in_review():
    """P11-10f: each signature happens once in its place."""
    v = _review(_submit(draft_v1()))
    with pytest.raises(ValidationError, match="already reviewed"):
        _review(v, "qa")
    with pytest.raises(ValidationError, match="cannot become in review"):
        _submit(v)


def test_an_approved_version_cannot_be_returned_and_an_effective_one_not_approved_again():
    """P11-10f: approved and effective are not reversible."""
    v = _approve(_review(_submit(draft_v1())))
    with pytest.raises(ValidationError):
        _return(v)
    v = make_effective(v)
    with pytest.raises(ValidationError):
        _approve(v)
    with pytest.raises(ValidationError):
        make_effective(v)


def test_only_the_author_signs_as_author():
    """P11-100: a signature of authorship belongs to the author."""
    v = draft_v1()
    with pytest.raises(ValidationError) as caught:
        _submit(v, "qa")
    assert "Only the author" in caught.value.message_dict["signer"][0]


def test_the_author_cannot_review_their_own_version():
    """POC-4 P11-10g: author and reviewer are two different people."""
    v = _submit(draft_v1())
    with pytest.raises(ValidationError) as caught:
        _review(v, "qa2")
    assert "three different people" in caught.value.message_dict["signer"][0]
    assert not signatures_for(v).filter(meaning=Meaning.REVIEWED).exists()


def test_the_qp_must_be_a_third_person():
    """POC-4 P11-10g: the approving QP is neither the author nor the reviewer."""
    from pocare.accounts.roles import Role
    from pocare.accounts.services import membership_grant
    from pocare.network.models import Site

    # Give the reviewer the QP role too: the rule is about people, not roles.
    membership_grant(actor=None, user=user("qa"), role=Role.QP, site=Site.objects.get(code="CTRL"), reason="test")
    v = _review(_submit(draft_v1()))
    with pytest.raises(ValidationError) as caught:
        _approve(v, "qa")
    assert "You reviewed" in caught.value.message_dict["signer"][0]
    membership_grant(actor=None, user=user("qa2"), role=Role.QP, site=Site.objects.get(code="CTRL"), reason="test")
    with pytest.raises(ValidationError) as caught:
        _approve(v, "qa2")
    assert "You authored" in caught.value.message_dict["signer"][0]
    assert _approve(v, "qp").status == VersionStatus.APPROVED


@pytest.mark.parametrize(("who", "call"), [
    ("qp", "review"), ("operator.mad", "review"), ("manager.mad", "review"), ("inspector", "review"),
    ("qa", "approve"), ("qa2", "approve"), ("inspector", "approve"),
    ("qp", "effective"), ("manager.mad", "effective"),
    ("operator.mad", "return"), ("inspector", "return"),
])
def test_only_the_right_roles_may_sign_each_step(who, call):
    """P11-10g POC-7: reviewing needs Control Site QA, approving the QP, making effective QA."""
    v = draft_v1()
    if call in ("review", "return"):
        v = _submit(v)
    elif call == "approve":
        v = _review(_submit(v))
    else:
        v = _approve(_review(_submit(v)))
    before = Event.objects.count()
    service = {"review": services.version_review, "approve": services.version_approve,
               "effective": services.version_make_effective, "return": services.version_return}[call]
    with pytest.raises(PermissionDenied):
        service(actor=user(who), version=v, credentials=creds(who), reason="x")
    assert Event.objects.count() == before


def test_the_reviewer_returns_a_version_to_draft_and_the_author_resubmits():
    """POC-4 CH4-9: returning records the reason and a signature; the version can be submitted again."""
    v = _return(_review(_submit(draft_v1())))
    assert v.status == VersionStatus.DRAFT and v.reviewer is None
    event = _events(v, MasterFileEvent.VERSION_RETURNED).get()
    assert event.reason == "fix step 3" and event.old["reviewer"] == "qa"
    assert signatures_for(v).filter(meaning=Meaning.REJECTED, signer_username="qa").exists()
    v = _approve(_review(_submit(v)))
    assert v.status == VersionStatus.APPROVED


def test_the_author_cannot_return_their_own_version():
    """POC-4: returning is the reviewer's or the QP's decision."""
    v = _submit(draft_v1())
    with pytest.raises(ValidationError, match="cannot return their own"):
        _return(v, "qa2")


def test_a_wrong_password_refuses_the_signature_and_changes_nothing():
    """P11-200 P11-300: signing re-authenticates; a wrong password is a recorded failed attempt."""
    v = _submit(draft_v1())
    with pytest.raises(SigningRefused):
        services.version_review(actor=user("qa"), version=v,
                                credentials=creds("qa").__class__(username="qa", password="wrong"), reason="x")
    v.refresh_from_db()
    assert v.reviewer is None and not signatures_for(v).filter(meaning=Meaning.REVIEWED).exists()
    assert Event.objects.filter(event_type=LedgerEvent.SIGNING_FAILED).exists()


def test_a_reason_is_required_for_every_step():
    """CH4-9: every change says why."""
    v = draft_v1()
    with pytest.raises(ValidationError) as caught:
        services.version_submit(actor=user("qa2"), version=v, credentials=creds("qa2"), reason="  ")
    assert "reason" in caught.value.message_dict


def test_changing_the_content_after_signing_shows_the_signatures_as_invalid():
    """P11-70: a signature is bound to the content it signed."""
    v = _review(_submit(draft_v1()))
    MasterFileVersion.objects.filter(pk=v.pk).update(content_hash="0" * 64)  # lint: allow tampering on purpose
    assert all(signature_status(s) == (False, "the record changed after it was signed")
               for s in Signature.objects.filter(record_type="masterfile.MasterFileVersion", record_id=str(v.pk)))


def test_after_approval_new_versions_come_only_through_a_change_request():
    """Q10-PQS POC-4: an approved master file changes only through change control."""
    v = _approve(_review(_submit(draft_v1())))
    assert v.status == VersionStatus.APPROVED
    with pytest.raises(ValidationError, match="raise a change request"):
        services.version_draft(actor=user("qa2"), product=product(), document=V1_TEXT, summary="again",
                               reason="x")


def test_site_people_and_the_qp_cannot_draft_versions_or_create_products():
    """P11-10g: only Control Site QA authors the master file."""
    for who in ("qp", "manager.mad", "operator.mad", "inspector"):
        with pytest.raises(PermissionDenied):
            services.version_draft(actor=user(who), product=product(), document=V1_TEXT, summary="x", reason="x")
        with pytest.raises(PermissionDenied):
            services.product_create(actor=user(who), code="X-1", name="X", indication="x", kind="autologous",
                                    reason="x")


def test_product_creation_checks_its_fields_and_records_an_event():
    """POC-5 A11-9: products are created by QA with a reason, and bad input names the field."""
    with pytest.raises(ValidationError) as caught:
        services.product_create(actor=user("qa"), code="bad code!", name="", indication="x", kind="xeno",
                                reason="x")
    assert set(caught.value.message_dict) == {"code", "name", "kind"}
    p = product()
    assert Event.objects.filter(event_type=MasterFileEvent.PRODUCT_CREATED, object_id=str(p.pk)).exists()
    with pytest.raises(ValidationError, match="exists already"):
        services.product_create(actor=user("qa"), code=p.code, name="x", indication="x", kind="autologous",
                                reason="x")
