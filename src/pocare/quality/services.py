"""Opening deviations: one function every capability calls when something departs from the master
file, a specification or the chain of custody (DESIGN rule 6: exceptions are first-class)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.services import event_record
from pocare.quality.events import QualityEvent
from pocare.quality.models import Deviation, DeviationKind

if TYPE_CHECKING:
    from pocare.accounts.models import User
    from pocare.custody.models import TherapyOrder
    from pocare.manufacturing.models import Batch
    from pocare.masterfile.models import Product
    from pocare.network.models import Site


def _next_reference(site: Site, year: int) -> str:
    prefix = f"DEV-{site.code}-{year}-"
    last = (Deviation.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


def deviation_open(
    *,
    actor: User | None,
    site: Site,
    kind: DeviationKind | str,
    title: str,
    description: str,
    source: models.Model | None = None,
    batch: Batch | None = None,
    order: TherapyOrder | None = None,
    product: Product | None = None,
    step_id: str = "",
    system: str = "",
    reason: str = "",
) -> Deviation:
    """Open a deviation at ``site`` (in the caller's transaction when there is one).

    Automatic deviations pass the person whose action revealed it as ``actor`` (or, for a device
    feed or logger upload with no person, ``actor=None`` and ``system``); the source record is kept
    so that review by exception links straight to it.
    """
    if kind not in DeviationKind.values:
        raise ValidationError({"kind": f"{kind!r} is not a kind of deviation; use one of: "
                                       f"{', '.join(DeviationKind.values)}."})
    title = (title or "").strip()
    description = (description or "").strip()
    if not title:
        raise ValidationError({"title": "Give the deviation a title: what happened, in a line."})
    if not description:
        raise ValidationError({"description": "Describe what happened and where."})
    if batch is not None:
        order = order or batch.order
        product = product or batch.masterfile_version.product
    with transaction.atomic():
        now = timezone.now()
        deviation = Deviation.objects.create(
            reference=_next_reference(site, now.year), site=site, kind=str(kind), title=title[:200],
            description=description, product=product, batch=batch, order=order, step_id=step_id,
            source_type=source._meta.label if source is not None else "",
            source_id=str(source.pk) if source is not None else "",
            opened_at=now, opened_by=actor, opened_by_system="" if actor is not None else system,
        )
        event_record(
            actor=actor, system=system, event_type=QualityEvent.DEVIATION_OPENED, site=site, obj=deviation,
            reason=reason or description,
            new={"reference": deviation.reference, "kind": str(kind), "title": deviation.title,
                 "batch": batch.reference if batch is not None else None,
                 "order": order.coi if order is not None and order.coi else None,
                 "step_id": step_id, "source": f"{deviation.source_type}#{deviation.source_id}" if source else ""},
        )
    return deviation


def deviation_raise(
    *, actor: User, site: Site, title: str, description: str, batch: Batch | None = None, step_id: str = "",
) -> Deviation:
    """A person raises a deviation by hand (kind *other*)."""
    if access.is_read_only(actor) or not access.has_perm(actor, Perm.DEVIATION_RAISE, site_id=site.pk):
        raise PermissionDenied("You may not raise deviations at this site.")
    return deviation_open(actor=actor, site=site, kind=DeviationKind.OTHER, title=title, description=description,
                          batch=batch, step_id=step_id)
