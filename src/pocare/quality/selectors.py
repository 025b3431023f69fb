"""Reads of quality events, scoped to what the person may see (the sites where they hold the
quality-view permission; Control Site roles: the network). Overdue is derived here from the due
date and the clock, never stored."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Signature
from pocare.quality.models import (
    CapaAction,
    Deviation,
    DeviationClassification,
    DeviationClosure,
    DeviationStatus,
    ImpactAssessment,
    Investigation,
    Notification,
    QualitySignal,
    SignalStatus,
)
from pocare.quality.questions import DEVIATION_SOURCE


def deviations_visible(user: Any) -> QuerySet[Deviation]:
    """Deviations the person may see: at the sites where they hold DEVIATION_VIEW, or all for the
    Control Site."""
    if not access.has_perm(user, Perm.DEVIATION_VIEW):
        return Deviation.objects.none()
    qs = Deviation.objects.select_related("site", "batch", "order", "opened_by", "product")
    site_ids = access.sites_with_perm(user, Perm.DEVIATION_VIEW)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


def deviation_for(user: Any, reference: str) -> Deviation:
    """The deviation ``reference`` if the person may see it; otherwise Deviation.DoesNotExist (a 404)."""
    return deviations_visible(user).get(reference=reference)


def is_overdue(deviation: Deviation, now: dt.datetime) -> bool:
    """Open past its investigation due date (derived, never stored)."""
    return deviation.status == DeviationStatus.OPEN and deviation.due_at is not None and deviation.due_at < now


def overdue_q(now: dt.datetime) -> Q:
    """The same rule as :func:`is_overdue`, as a query filter."""
    return Q(status=DeviationStatus.OPEN, due_at__isnull=False, due_at__lt=now)


def notifications_for(user: Any) -> QuerySet[Notification]:
    """The person's own notifications, newest first."""
    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    return Notification.objects.filter(recipient=user).select_related("deviation", "signal")


def unread_count(user: Any) -> int:
    return notifications_for(user).filter(read_at=None).count()


def signals_visible(user: Any) -> QuerySet[QualitySignal]:
    if not access.has_perm(user, Perm.DEVIATION_VIEW):
        return QualitySignal.objects.none()
    qs = QualitySignal.objects.select_related("site", "product", "deviation", "change_request", "resolved_by")
    site_ids = access.sites_with_perm(user, Perm.DEVIATION_VIEW)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


# --- work queues (the home page, web/queues.py) ----------------------------------------------------

#: Who acts on a deviation: the site investigates, Control Site QA assesses and closes.
_DEVIATION_WORK = (Perm.DEVIATION_INVESTIGATE, Perm.DEVIATION_CLOSE)


def _working_sites(user: Any) -> set[int] | None:
    return access.sites_with_any_perm(user, _DEVIATION_WORK)


def _may_work(user: Any) -> bool:
    return any(access.has_perm(user, p) for p in _DEVIATION_WORK) and not access.is_read_only(user)


def deviations_overdue_for(user: Any, now: dt.datetime) -> QuerySet[Deviation]:
    """Open deviations past their investigation due date, at the sites where the person investigates
    or closes deviations (the Control Site: the network), most overdue first."""
    if not _may_work(user):
        return Deviation.objects.none()
    qs = Deviation.objects.filter(overdue_q(now)).select_related("site").order_by("due_at", "pk")
    site_ids = _working_sites(user)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


def capa_overdue_for(user: Any, today: dt.date) -> QuerySet[CapaAction]:
    """CAPA actions not done by their due date that the person owns, or that belong to a deviation of
    a site where they investigate or close deviations."""
    if not getattr(user, "is_authenticated", False) or access.is_read_only(user):
        return CapaAction.objects.none()
    qs = (CapaAction.objects.filter(done_at__isnull=True, due_on__lt=today)
          .select_related("deviation__site", "owner").order_by("due_on", "pk"))
    if not _may_work(user):
        return qs.filter(owner=user)
    site_ids = _working_sites(user)
    return qs if site_ids is None else qs.filter(Q(owner=user) | Q(deviation__site_id__in=site_ids))


def signals_to_triage(user: Any) -> QuerySet[QualitySignal]:
    """Open quality signals for the person who resolves them (Control Site QA), oldest first."""
    if not access.has_perm(user, Perm.DEVIATION_CLOSE) or access.is_read_only(user):
        return QualitySignal.objects.none()
    qs = QualitySignal.objects.filter(status=SignalStatus.OPEN).select_related("site", "product")
    site_ids = access.sites_with_perm(user, Perm.DEVIATION_CLOSE)
    qs = qs if site_ids is None else qs.filter(site_id__in=site_ids)
    return qs.order_by("raised_at", "pk")


def source_link(deviation: Deviation) -> tuple[str, str] | None:
    """Where the record that revealed the deviation is shown: ``(label, url)``, or None."""
    try:
        if deviation.batch is not None:
            batch_url = reverse("manufacturing:batch", args=[deviation.batch.reference])
            if deviation.step_id:
                return f"Step {deviation.step_id} of batch {deviation.batch.reference}", \
                    f"{batch_url}#step-{deviation.step_id}"
            for answer in DEVIATION_SOURCE.ask(deviation):
                if answer is not None:
                    return answer
            if deviation.source_type == "manufacturing.Alarm":
                return f"Device alarm on batch {deviation.batch.reference}", \
                    reverse("manufacturing:batch_device", args=[deviation.batch.reference])
            if deviation.order is None or deviation.source_type not in ("custody.Handoff", "custody.TemperatureUpload"):
                return f"Batch {deviation.batch.reference}", batch_url
        if deviation.order is not None:
            return f"Therapy order {deviation.order.coi or deviation.order.pk} (custody)", \
                reverse("custody:order", args=[deviation.order.pk]) + (
                    "#shipments" if deviation.source_type == "custody.TemperatureUpload" else "#timeline")
    except NoReverseMatch:  # pragma: no cover - the page of the source is not installed
        return None
    return None


# --- one deviation's page ------------------------------------------------------------------------


@dataclass
class SignatureView:
    signature: Signature
    valid: bool
    reason: str


def signature_views(record: Any) -> list[SignatureView]:
    """The signatures of a record, each checked against the record's content now."""
    current = content_hash(record.signed_content())
    out = []
    for sig in Signature.objects.filter(record_type=record._meta.label, record_id=str(record.pk)) \
            .select_related("event").order_by("signed_at", "pk"):
        valid = sig.record_hash == current
        out.append(SignatureView(sig, valid, "" if valid else "the record changed after it was signed"))
    return out


@dataclass
class AssessmentView:
    assessment: ImpactAssessment
    signatures: list[SignatureView]


@dataclass
class DeviationPage:
    """Everything the deviation page shows."""

    deviation: Deviation
    source: tuple[str, str] | None
    classifications: list[DeviationClassification]
    investigations: list[Investigation]
    actions: list[CapaAction]
    assessments: list[AssessmentView]
    closure: DeviationClosure | None
    closure_signatures: list[SignatureView] = field(default_factory=list)
    overdue: bool = False

    @property
    def investigation(self) -> Investigation | None:
        return self.investigations[-1] if self.investigations else None

    @property
    def effectiveness_open(self) -> list[CapaAction]:
        return [a for a in self.actions if a.effectiveness_due_on and a.effective is None]


def deviation_page(deviation: Deviation, now: dt.datetime) -> DeviationPage:
    closure = DeviationClosure.objects.filter(deviation=deviation).select_related("closed_by").first()
    return DeviationPage(
        deviation=deviation,
        source=source_link(deviation),
        classifications=list(deviation.classifications.select_related("classified_by").order_by("classified_at",
                                                                                                 "pk")),
        investigations=list(deviation.investigations.select_related("completed_by").order_by("completed_at", "pk")),
        actions=list(deviation.capa_actions.select_related("owner", "done_by", "effectiveness_checked_by",
                                                           "change_request").order_by("due_on", "pk")),
        assessments=[AssessmentView(a, signature_views(a)) for a in
                     deviation.impact_assessments.select_related("assessed_by").order_by("assessed_at", "pk")],
        closure=closure,
        closure_signatures=signature_views(closure) if closure is not None else [],
        overdue=is_overdue(deviation, now),
    )
