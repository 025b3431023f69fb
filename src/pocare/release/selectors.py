"""Reads of release, scoped to the viewer: site people see the batches of their sites (a treating
physician also those made for their hospital's patients), the Control Site sees the network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Signature
from pocare.manufacturing.models import Batch, BatchOrigin, BatchStatus
from pocare.release.checklist import Checklist, ChecklistLine, release_checklist, release_checklists
from pocare.release.models import (
    Certification,
    Decision,
    ExceptionReview,
    OosAcceptance,
    OosEvaluation,
    OosRelease,
    QcReview,
)


def release_batches_visible(user: Any, perm: Perm = Perm.RELEASE_VIEW) -> QuerySet[Batch]:
    """Batches whose release the person may see — or act on with ``perm`` (a release signature):
    made or treated at a site where they hold it."""
    if not access.has_perm(user, perm):
        return Batch.objects.none()
    qs = Batch.objects.select_related("site", "unit", "masterfile_version__product", "order", "collection",
                                      "order__treating_site")
    site_ids = access.sites_with_perm(user, perm)
    if site_ids is None:
        return qs
    return qs.filter(Q(site_id__in=site_ids) | Q(order__treating_site_id__in=site_ids))


def release_batch_for(user: Any, reference: str, perm: Perm = Perm.RELEASE_VIEW) -> Batch:
    """The batch ``reference`` if the person may see its release (or holds ``perm`` at one of its
    sites); otherwise Batch.DoesNotExist (a 404)."""
    return release_batches_visible(user, perm).get(reference=reference)


def stage(batch: Batch) -> str:
    """Where the batch is in release: ``exceptions``, ``qc_review``, ``certification``, ``released``,
    ``rejected`` or ``not_releasable`` (aborted or still in manufacture)."""
    return stages([batch])[batch.pk]


def stages(batches: Sequence[Batch]) -> dict[int, str]:
    """:func:`stage` of each batch, by id, in three queries however many batches (a queue page)."""
    ids = [b.pk for b in batches]
    decisions = dict(Certification.objects.filter(batch_id__in=ids).values_list("batch_id", "decision"))
    qc_reviewed = set(QcReview.objects.filter(batch_id__in=ids).values_list("batch_id", flat=True))
    reviewed = set(ExceptionReview.objects.filter(batch_id__in=ids).values_list("batch_id", flat=True))
    out = {}
    for batch in batches:
        if batch.pk in decisions:
            out[batch.pk] = str(decisions[batch.pk])
        elif batch.status != BatchStatus.COMPLETED:
            out[batch.pk] = "not_releasable"
        elif batch.pk in qc_reviewed:
            out[batch.pk] = "certification"
        elif batch.pk in reviewed:
            out[batch.pk] = "qc_review"
        else:
            out[batch.pk] = "exceptions"
    return out


STAGE_LABELS = {
    "exceptions": "Stage 1 — review by exception to sign",
    "qc_review": "Stage 1 — site QC review to sign",
    "certification": "Stage 2 — awaiting QP certification",
    "released": "Certified for release",
    "rejected": "Rejected",
    "not_releasable": "Not releasable",
}


@dataclass
class QueueRow:
    batch: Batch
    stage: str
    blocking: list[ChecklistLine]
    pending: list[ChecklistLine]

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS[self.stage]


def queue_batches(user: Any) -> QuerySet[Batch]:
    """Completed batches not yet certified or rejected, that the person may see. Demo history (loaded,
    not executed: no signatures, already given to its patients) is not queued."""
    return (release_batches_visible(user).filter(status=BatchStatus.COMPLETED, certification__isnull=True,
                                                 origin=BatchOrigin.EXECUTED)
            .order_by("ended_at", "pk"))


def queue_rows(batches: Iterable[Batch]) -> list[QueueRow]:
    """Each batch with its stage and the checklist lines that block it (for one page of the queue):
    the checklists of the whole page are evaluated together, in as many queries as one."""
    batches = list(batches)
    staged = stages(batches)
    return [QueueRow(c.batch, staged[c.batch.pk], c.failing, [ln for ln in c.lines if ln.state == "pending"])
            for c in release_checklists(batches)]


def release_queue(user: Any, limit: int = 200) -> list[QueueRow]:
    """The QP's queue, oldest first, each with its stage and what blocks it (the first ``limit``)."""
    return queue_rows(queue_batches(user)[:limit])


def _awaiting(user: Any, perm: Perm) -> QuerySet[Batch]:
    """Completed, executed, undecided batches made at the sites where the person may sign with ``perm``."""
    if not access.has_perm(user, perm) or access.is_read_only(user):
        return Batch.objects.none()
    qs = (Batch.objects.filter(status=BatchStatus.COMPLETED, origin=BatchOrigin.EXECUTED, certification__isnull=True)
          .select_related("site", "masterfile_version__product").order_by("ended_at", "pk"))
    site_ids = access.sites_with_perm(user, perm)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


def _reviewed(model: type[ExceptionReview] | type[QcReview]) -> Exists:
    return Exists(model.objects.filter(batch=OuterRef("pk")))


def exception_reviews_due(user: Any) -> QuerySet[Batch]:
    """Batches whose review by exception waits for this person's signature (stage 1)."""
    return _awaiting(user, Perm.EXCEPTIONS_REVIEW).filter(~_reviewed(ExceptionReview))


def qc_reviews_due(user: Any) -> QuerySet[Batch]:
    """Batches reviewed by exception whose site QC review (the results) waits for this person (stage 1)."""
    return _awaiting(user, Perm.RELEASE_QC_REVIEW).filter(_reviewed(ExceptionReview), ~_reviewed(QcReview))


def decisions_due(user: Any) -> QuerySet[Batch]:
    """Batches through stage 1 that wait for the QP's decision (stage 2, POC-7: the QP only)."""
    return _awaiting(user, Perm.RELEASE_CERTIFY).filter(_reviewed(QcReview))


@dataclass
class SignedRecord:
    record: Any
    signatures: list[tuple[Signature, bool, str]]


def _signed(record: Any, label: str | None = None) -> SignedRecord:
    label = label or record._meta.label
    expected = content_hash(record.signed_content())
    broken = "the record changed after it was signed"
    sigs = [(s, s.record_hash == expected, "" if s.record_hash == expected else broken)
            for s in Signature.objects.filter(record_type=label, record_id=str(record.pk)).select_related("event")]
    return SignedRecord(record, sigs)


@dataclass
class ReleasePage:
    batch: Batch
    checklist: Checklist
    stage: str
    exception_reviews: list[SignedRecord]
    qc_reviews: list[SignedRecord]
    certification: SignedRecord | None
    oos: list[OosView]

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS[self.stage]


@dataclass
class OosView:
    oos: OosRelease
    request: SignedRecord
    evaluation: SignedRecord | None
    acceptance: SignedRecord | None


def oos_view(oos: OosRelease) -> OosView:
    evaluation = _signed(OosEvaluation.objects.get(pk=oos.pk)) if oos.evaluated_at else None
    acceptance = _signed(OosAcceptance.objects.get(pk=oos.pk)) if oos.accepted_at else None
    return OosView(oos, _signed(oos), evaluation, acceptance)


def release_page(batch: Batch) -> ReleasePage:
    """Everything the release view of one batch shows."""
    checklist = release_checklist(batch)
    cert = Certification.objects.filter(batch=batch).select_related("qp", "oos_release").first()
    return ReleasePage(
        batch=batch, checklist=checklist, stage=stage(batch),
        exception_reviews=[_signed(r) for r in ExceptionReview.objects.filter(batch=batch).select_related("reviewer")],
        qc_reviews=[_signed(r) for r in QcReview.objects.filter(batch=batch).select_related("reviewer")],
        certification=_signed(cert) if cert is not None else None,
        oos=[oos_view(o) for o in OosRelease.objects.filter(batch=batch).select_related(
            "requested_by", "evaluated_by", "accepted_by")],
    )


def dispatch_hold(order: Any) -> str | None:
    """Release's answer to custody's ``DISPATCH_HOLDS``: the product leaves for the hospital only
    once its batch is completed and certified for release by the QP (ATMP-REL, POC-7)."""
    certified = Batch.objects.filter(order=order, status=BatchStatus.COMPLETED,
                                     certification__decision=Decision.RELEASED).exists()
    return None if certified else ("The product is dispatched only once its batch is completed and certified "
                                   "for release by the QP.")
