"""Release of a batch (ATMP-REL, ATMP-OOS, A11-12, POC-7): the signed review by exception, the site's
QC review (stage 1), the QP's certification or rejection (stage 2), the out-of-specification
release workflow, and printing the certificate. Each is one transaction with its ledger event and,
where signed, its signature; nothing here is changed or deleted once written.

Who does what:

- review by exception: the site manager or QC analyst of the batch's site (Perm.EXCEPTIONS_REVIEW).
  They may have verified or performed steps (a POCare site has one manager and one QC analyst, who
  verify and do the in-process QC steps); whether they did is recorded with the review, and the
  independent look is the Control Site QP's at stage 2;
- stage 1: the site's QC analyst (Perm.RELEASE_QC_REVIEW), on a completed batch whose review by
  exception is signed;
- stage 2: the Control Site QP only (Perm.RELEASE_CERTIFY, POC-7), after stage 1.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm, Role
from pocare.accounts.services import require_perm
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing.models import Batch, BatchStatus
from pocare.manufacturing.selectors import batch_page
from pocare.release.checklist import RESULTS_LINE, Checklist, release_checklist, review_items_hash, review_snapshot
from pocare.release.events import ReleaseEvent
from pocare.release.models import (
    Certification,
    Decision,
    ExceptionReview,
    OosAcceptance,
    OosEvaluation,
    OosRelease,
    OosStatus,
    QcReview,
)

OOS_RECIPIENTS = ("sponsor", "authority")


def _text(value: str, field: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: what})
    if len(value) > 4000:
        raise ValidationError({field: "At most 4,000 characters."})
    return value


def _lock(batch: Batch) -> Batch:
    return Batch.objects.select_for_update().get(pk=batch.pk)


def _not_decided(batch: Batch) -> None:
    decided = Certification.objects.filter(batch=batch).first()
    if decided is not None:
        raise ValidationError({"batch": f"{batch.reference} is already {decided.get_decision_display().lower()}."})


def _require_releasable(batch: Batch) -> None:
    if batch.status == BatchStatus.ABORTED:
        raise ValidationError({"batch": f"{batch.reference} was aborted (a manufacturing failure): it cannot be "
                                        "released."})
    if batch.status != BatchStatus.COMPLETED:
        raise ValidationError({"batch": f"{batch.reference} is {batch.get_status_display().lower()}: release "
                                        "starts when manufacture is completed."})


def _performers(batch: Batch) -> set[int]:
    ids: set[int] = set()
    for performed, verified in batch.steps.values_list("performed_by_id", "verified_by_id"):
        ids.update(x for x in (performed, verified) if x is not None)
    return ids


def _require_qp(actor: User) -> None:
    """POC-7: the certify function is the QP's alone — a role check on top of the permission, so that
    a permission granted to another role by mistake still does not reach it."""
    require_perm(actor, Perm.RELEASE_CERTIFY)
    if Role.QP not in access.roles_of(actor):
        raise PermissionDenied("Only the Qualified Person certifies or rejects a batch.")


# --- review by exception and stage 1 ---------------------------------------------------------------


def exceptions_review_sign(*, actor: User, batch: Batch, comment: str,
                           credentials: SigningCredentials) -> ExceptionReview:
    """Sign the review by exception of a batch (meaning: reviewed), keeping the items listed now so
    that a later exception is not covered by it. By the site's manager or QC analyst; the event says
    whether they performed or verified steps of the batch themselves."""
    require_perm(actor, Perm.EXCEPTIONS_REVIEW, site=batch.site)
    comment = _text(comment, "comment", "Say what you reviewed and what you found.")
    _require_releasable(batch)
    took_part = actor.pk in _performers(batch)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(batch)

        items = review_snapshot(batch_page(batch).review)
        review = ExceptionReview.objects.create(batch=batch, items=items, items_hash=review_items_hash(items),
                                                comment=comment, reviewer=actor, reviewed_at=timezone.now())
        event_record(actor=actor, event_type=ReleaseEvent.EXCEPTIONS_REVIEWED, site=batch.site, obj=review,
                     reason=comment, new={"batch": batch.reference, "items": len(items),
                                          "items_hash": review.items_hash, "reviewer_took_part": took_part})
        signature_apply(proof=proof, record=review, meaning=Meaning.REVIEWED, site=batch.site, reason=comment)
    return review


def qc_review_sign(*, actor: User, batch: Batch, comment: str, credentials: SigningCredentials) -> QcReview:
    """Stage 1: the site's QC analyst reviews the completed batch and signs (meaning: reviewed) with the
    checklist as evaluated now. Needs the review by exception signed and still current."""
    require_perm(actor, Perm.RELEASE_QC_REVIEW, site=batch.site)
    comment = _text(comment, "comment", "Say what you reviewed and what you found.")
    _require_releasable(batch)
    _not_decided(batch)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(batch)
        _not_decided(batch)
        checklist = release_checklist(batch)
        if checklist.line("exceptions_review").state != "pass":
            raise ValidationError({"batch": "Sign the review by exception first: "
                                            + checklist.line("exceptions_review").detail})
        snapshot = checklist.snapshot()
        review = QcReview.objects.create(batch=batch, comment=comment, checklist=snapshot,
                                         checklist_hash=content_hash(snapshot), reviewer=actor,
                                         reviewed_at=timezone.now())
        event_record(actor=actor, event_type=ReleaseEvent.QC_REVIEWED, site=batch.site, obj=review, reason=comment,
                     new={"batch": batch.reference, "checklist_hash": review.checklist_hash,
                          "failing": [ln.id for ln in checklist.failing]})
        signature_apply(proof=proof, record=review, meaning=Meaning.REVIEWED, site=batch.site, reason=comment)
    return review


# --- stage 2: the QP ------------------------------------------------------------------------------


def release_blockers(batch: Batch, checklist: Checklist) -> tuple[list[str], OosRelease | None]:
    """Why the QP may not certify now (empty: they may), and the OOS release that allows a failing
    results line, if any."""
    blockers = []
    if not QcReview.objects.filter(batch=batch).exists():
        blockers.append("Stage 1 is not done: the site's QC review is not signed.")
    oos = None
    failing = [ln for ln in checklist.lines if ln.state == "fail"]
    if [ln.id for ln in failing] == [RESULTS_LINE] and checklist.oos_results:
        oos = (OosRelease.objects.filter(batch=batch, status=OosStatus.ACCEPTED).order_by("-accepted_at").first())
        missing_results = [r for r in checklist.results if r.release_critical and r.state == "missing"]
        if oos is None:
            blockers.append("A release-critical attribute is out of specification: it can be released only through "
                            "an accepted out-of-specification release (ATMP-OOS).")
        elif missing_results:
            blockers.append("Release-critical results are missing: " + ", ".join(r.name for r in missing_results))
            oos = None
        elif not oos_notified(oos):
            blockers.append("The out-of-specification release is accepted but the sponsor or authority is not "
                            "notified yet.")
            oos = None
        else:
            covered = {a["id"] for a in oos.attributes}
            uncovered = [r.name for r in checklist.oos_results if r.attribute_id not in covered]
            if uncovered:
                blockers.append("The out-of-specification release does not cover: " + ", ".join(uncovered))
                oos = None
    else:
        for ln in failing:
            blockers.append(f"{ln.label}: {ln.detail}")
    return blockers, oos


def batch_certify(*, actor: User, batch: Batch, reason: str, credentials: SigningCredentials) -> Certification:
    """Stage 2: the QP certifies the batch for release (meaning: released), with the checklist it
    relied on and its hash. Needs stage 1 and every line passing (results pending after release
    allowed); a failing results line only with an accepted, notified out-of-specification release,
    which the certification then names."""
    _require_qp(actor)
    reason = _text(reason, "reason", "Give the reason for certification: it is recorded with your signature.")
    _require_releasable(batch)
    _not_decided(batch)
    blockers, _ = release_blockers(batch, release_checklist(batch))
    if blockers:
        raise ValidationError({"batch": blockers})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(batch)
        _not_decided(batch)
        checklist = release_checklist(batch)  # again, inside the transaction: what is signed is what holds
        blockers, oos = release_blockers(batch, checklist)
        if blockers:
            raise ValidationError({"batch": blockers})
        return _decide(actor=actor, batch=batch, decision=Decision.RELEASED, reason=reason, checklist=checklist,
                       oos=oos, proof=proof)


def batch_reject(*, actor: User, batch: Batch, reason: str, credentials: SigningCredentials) -> Certification:
    """Stage 2: the QP rejects the batch with a reason (meaning: rejected); the checklist is kept too.
    A rejected batch never leaves the site. Aborted batches may be rejected as well (for the record)."""
    _require_qp(actor)
    reason = _text(reason, "reason", "Give the reason for rejecting the batch.")
    if batch.status == BatchStatus.IN_PROGRESS:
        raise ValidationError({"batch": f"{batch.reference} is still in manufacture."})
    _not_decided(batch)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(batch)
        _not_decided(batch)
        return _decide(actor=actor, batch=batch, decision=Decision.REJECTED, reason=reason,
                       checklist=release_checklist(batch), oos=None, proof=proof)


def _decide(*, actor: User, batch: Batch, decision: str, reason: str, checklist: Checklist,
            oos: OosRelease | None, proof: Any) -> Certification:
    snapshot = checklist.snapshot()
    cert = Certification.objects.create(batch=batch, decision=decision, reason=reason, checklist=snapshot,
                                        checklist_hash=content_hash(snapshot), oos_release=oos, qp=actor,
                                        decided_at=timezone.now())
    event_record(actor=actor, site=batch.site, obj=cert, reason=reason,
                 event_type=ReleaseEvent.CERTIFIED if decision == Decision.RELEASED else ReleaseEvent.REJECTED,
                 new={"batch": batch.reference, "decision": decision, "checklist_hash": cert.checklist_hash,
                      "oos_release": oos.pk if oos else None,
                      "pending": [ln.id for ln in checklist.lines if ln.state == "pending"]})
    signature_apply(proof=proof, record=cert, site=batch.site, reason=reason,
                    meaning=Meaning.RELEASED if decision == Decision.RELEASED else Meaning.REJECTED)
    return cert


def certificate_printed(*, actor: User, certification: Certification, fmt: str) -> None:
    """Record that a release certificate was printed (a copy of a GMP record left the system)."""
    # Reading is not writing: an inspector may print too, so no read-only refusal here.
    if not access.has_perm(actor, Perm.RELEASE_VIEW, site_id=certification.batch.site_id):
        raise PermissionDenied("You may not print this certificate.")
    with transaction.atomic():
        event_record(actor=actor, event_type=ReleaseEvent.CERTIFICATE_PRINTED, site=certification.batch.site,
                     obj=certification, reason="Release certificate printed",
                     new={"batch": certification.batch.reference, "format": fmt,
                          "checklist_hash": certification.checklist_hash})


# --- out-of-specification release (ATMP-OOS) -------------------------------------------------------


def oos_notified(oos: OosRelease) -> bool:
    return bool(oos.notifications)


def _oos_lock(oos: OosRelease) -> OosRelease:
    return OosRelease.objects.select_for_update().get(pk=oos.pk)


def _physician_of(actor: User, batch: Batch) -> None:
    """The treating physician: OOS_REQUEST at the patient's treating site (or the manufacturing site)."""
    order = batch.order
    if access.is_read_only(actor) or not (
            access.has_perm(actor, Perm.OOS_REQUEST, site_id=order.treating_site_id)
            or access.has_perm(actor, Perm.OOS_REQUEST, site_id=batch.site_id)):
        raise PermissionDenied("Only the patient's treating physician asks for or accepts an out-of-specification "
                               "product.")


def oos_request(*, actor: User, batch: Batch, clinical_justification: str,
                credentials: SigningCredentials) -> OosRelease:
    """The treating physician asks for an out-of-specification product to be administered, because
    not administering it is an immediate significant hazard to the patient (Part IV 11.5). Only when a
    release-critical attribute is out of specification; records which. Signed (authored)."""
    _physician_of(actor, batch)
    justification = _text(clinical_justification, "clinical_justification",
                          "Say why administering the product avoids an immediate significant hazard to the patient.")
    _require_releasable(batch)
    _not_decided(batch)
    checklist = release_checklist(batch)
    attributes = [{"id": r.attribute_id, "name": r.name, "value": r.value, "acceptance": r.acceptance}
                  for r in checklist.oos_results]
    if not attributes:
        raise ValidationError({"batch": "No release-critical attribute of this batch is out of specification: there "
                                        "is nothing to request."})
    if OosRelease.objects.filter(batch=batch).exclude(status=OosStatus.DECLINED).exists():
        raise ValidationError({"batch": "An out-of-specification release is already under way for this batch."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        _lock(batch)
        oos = OosRelease.objects.create(batch=batch, attributes=attributes, clinical_justification=justification,
                                        requested_by=actor, requested_at=timezone.now())
        event_record(actor=actor, event_type=ReleaseEvent.OOS_REQUESTED, site=batch.site, obj=oos,
                     reason=justification, new={"batch": batch.reference, "attributes": attributes})
        signature_apply(proof=proof, record=oos, meaning=Meaning.AUTHORED, site=batch.site,
                        reason=justification)
    return oos


def oos_evaluate(*, actor: User, oos: OosRelease, risk_evaluation: str, credentials: SigningCredentials) -> OosRelease:
    """The QP gives the manufacturer's risk evaluation of administering the product. Signed (reviewed)."""
    _require_qp(actor)
    text = _text(risk_evaluation, "risk_evaluation", "Give the risk evaluation for the treating physician.")
    if oos.status != OosStatus.REQUESTED:
        raise ValidationError({"status": f"The request is {oos.get_status_display().lower()}: the risk is evaluated "
                                         "once, after the physician's request."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        oos = _oos_lock(oos)
        if oos.status != OosStatus.REQUESTED:
            raise ValidationError({"status": "The request was evaluated meanwhile."})
        oos.status, oos.risk_evaluation, oos.evaluated_by, oos.evaluated_at = (OosStatus.EVALUATED, text, actor,
                                                                               timezone.now())
        oos.save(update_fields=["status", "risk_evaluation", "evaluated_by", "evaluated_at"])
        event_record(actor=actor, event_type=ReleaseEvent.OOS_EVALUATED, site=oos.batch.site, obj=oos, reason=text,
                     old={"status": OosStatus.REQUESTED}, new={"status": OosStatus.EVALUATED})
        signature_apply(proof=proof, record=_stage(oos, OosEvaluation), meaning=Meaning.REVIEWED,
                        site=oos.batch.site, reason=text)
    return oos


def oos_accept(*, actor: User, oos: OosRelease, statement: str, credentials: SigningCredentials) -> OosRelease:
    """The treating physician accepts the product knowing the risk evaluation. Signed (approved)."""
    _physician_of(actor, oos.batch)
    text = _text(statement, "statement", "State that you accept the product in the light of the risk evaluation.")
    if oos.status != OosStatus.EVALUATED:
        raise ValidationError({"status": "The physician accepts only after the QP's risk evaluation."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        oos = _oos_lock(oos)
        if oos.status != OosStatus.EVALUATED:
            raise ValidationError({"status": "The request changed meanwhile."})
        oos.status, oos.acceptance_statement, oos.accepted_by, oos.accepted_at = (OosStatus.ACCEPTED, text, actor,
                                                                                  timezone.now())
        oos.save(update_fields=["status", "acceptance_statement", "accepted_by", "accepted_at"])
        event_record(actor=actor, event_type=ReleaseEvent.OOS_ACCEPTED, site=oos.batch.site, obj=oos, reason=text,
                     old={"status": OosStatus.EVALUATED}, new={"status": OosStatus.ACCEPTED})
        signature_apply(proof=proof, record=_stage(oos, OosAcceptance), meaning=Meaning.APPROVED,
                        site=oos.batch.site, reason=text)
    return oos


def oos_notify(*, actor: User, oos: OosRelease, recipient: str, reference: str) -> OosRelease:
    """Record that the sponsor or the competent authority was notified of the out-of-specification
    release (by the QP or Control Site QA), with the notice's reference. Notices are appended."""
    roles = access.roles_of(actor)
    if access.is_read_only(actor) or not (roles & {Role.QP, Role.CONTROL_QA}):
        raise PermissionDenied("The QP or Control Site QA notifies the sponsor or the authority.")
    if recipient not in OOS_RECIPIENTS:
        raise ValidationError({"recipient": "Choose sponsor or authority."})
    reference = _text(reference, "reference", "Give the reference of the notice (letter, e-mail or portal number).")
    if len(reference) > 200:
        raise ValidationError({"reference": "At most 200 characters."})
    if oos.status != OosStatus.ACCEPTED:
        raise ValidationError({"status": "Notify once the treating physician has accepted the product."})
    with transaction.atomic():
        oos = _oos_lock(oos)
        now = timezone.now()
        notice = {"to": recipient, "reference": reference, "at": now.isoformat(), "by": actor.printed_name}
        old = list(oos.notifications)
        oos.notifications = [*old, notice]
        oos.save(update_fields=["notifications"])
        event_record(actor=actor, event_type=ReleaseEvent.OOS_NOTIFIED, site=oos.batch.site, obj=oos,
                     reason=f"{recipient} notified: {reference}", old={"notifications": len(old)}, new=notice)
    return oos


def _stage(oos: OosRelease, model: type[OosRelease]) -> OosRelease:
    """The same row seen as one stage of the workflow (a proxy with that stage's signed content)."""
    return model.objects.get(pk=oos.pk)
