"""Reads of the chain of identity, scoped to what the viewer may see: an order is visible at its
manufacturing site and at its treating site, and to the Control Site."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.core import render
from pocare.custody.charts import temperature_svg
from pocare.custody.models import (
    Collection,
    Handoff,
    Shipment,
    TemperatureReading,
    TemperatureReadingCorrection,
    TemperatureUpload,
    TherapyOrder,
)
from pocare.network.models import Site, SiteKind, SiteStatus


def orders_visible(user: Any, perm: Perm = Perm.CUSTODY_VIEW) -> QuerySet[TherapyOrder]:
    """Therapy orders the person may see — or act on with ``perm`` (e.g. CUSTODY_RECORD for a
    hand-off or a label): made or treated at a site where they hold it."""
    if not access.has_perm(user, perm):
        return TherapyOrder.objects.none()
    qs = TherapyOrder.objects.select_related("site", "treating_site", "product", "ordered_by", "accepted_by")
    site_ids = access.sites_with_perm(user, perm)
    return qs if site_ids is None else qs.filter(Q(site_id__in=site_ids) | Q(treating_site_id__in=site_ids))


def shipments_visible(user: Any, perm: Perm = Perm.CUSTODY_VIEW) -> QuerySet[Shipment]:
    return Shipment.objects.filter(order__in=orders_visible(user, perm)).select_related("order", "order__site")


def collections_visible(user: Any) -> QuerySet[Collection]:
    return Collection.objects.filter(order__in=orders_visible(user)).select_related("order", "collection_site")


def handoffs_of(order: TherapyOrder) -> QuerySet[Handoff]:
    """The order's hand-offs, blocked attempts included, oldest first."""
    return order.handoffs.select_related("site", "performed_by", "deviation", "collection", "batch").order_by(
        "occurred_at", "pk")


@dataclass
class ShipmentView:
    """A shipment with its uploads and the chart of all its readings."""

    shipment: Shipment
    uploads: list[TemperatureUpload] = field(default_factory=list)
    chart: str = ""
    readings: int = 0
    corrections: int = 0
    #: readings whose time cannot be shown (stored before the input bounds, or by a restore): {pk, raw, celsius}
    invalid: list[dict[str, Any]] = field(default_factory=list)


def shipments_of(order: TherapyOrder) -> list[ShipmentView]:
    found = []
    shipments = order.shipments.select_related("created_by").prefetch_related(
        Prefetch("uploads", queryset=TemperatureUpload.objects.select_related("uploaded_by", "deviation")))
    for shipment in shipments:
        stored = TemperatureReading.objects.filter(shipment=shipment)
        invalid = render.outside_window(stored, "at", "celsius")
        rows = []
        corrections, total = 0, len(invalid)
        for at, celsius, corrected, correction in (stored.filter(render.in_window("at"))
                                                   .order_by("at").values_list("at", "celsius", "correction__celsius",
                                                                               "correction__pk")):
            total += 1
            if correction is not None:  # the chart shows the corrected value; an invalid reading is left out
                corrections += 1
                if corrected is None:
                    continue
                celsius = corrected
            rows.append((at, celsius))
        uploads = list(shipment.uploads.all())
        spans = []
        for upload in uploads:
            for e in upload.excursions:
                spans.append((datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])))
        found.append(ShipmentView(shipment, uploads, temperature_svg(rows, shipment.min_celsius,
                                                                      shipment.max_celsius, spans),
                                  total, corrections, invalid))
    return found


def readings_of(shipment: Shipment) -> QuerySet[TemperatureReading]:
    """The shipment's logged temperatures in time order, each with its correction (the caller has
    checked that the shipment is visible)."""
    return shipment.readings.select_related("correction__corrected_by", "upload").order_by("at", "pk")


def corrections_of(shipment: Shipment) -> QuerySet[TemperatureReadingCorrection]:
    """The corrections of the shipment's readings, newest first."""
    return (TemperatureReadingCorrection.objects.filter(reading__shipment=shipment)
            .select_related("reading", "corrected_by").order_by("-corrected_at", "-pk"))


def may_create_order(user: Any, site: Site | None = None) -> bool:
    if access.is_read_only(user):
        return False
    return access.has_perm(user, Perm.ORDER_CREATE, site_id=site.pk if site else None)


def may_accept(user: Any, order: TherapyOrder) -> bool:
    return not access.is_read_only(user) and access.has_perm(user, Perm.ORDER_ACCEPT, site_id=order.site_id)


def may_record_at(user: Any, site: Site) -> bool:
    return not access.is_read_only(user) and access.has_perm(user, Perm.CUSTODY_RECORD, site_id=site.pk)


def may_record(user: Any, order: TherapyOrder) -> bool:
    """At either of the order's sites."""
    return may_record_at(user, order.site) or may_record_at(user, order.treating_site)


def manufacturing_sites() -> QuerySet[Site]:
    """POCare sites that take orders."""
    return Site.objects.exclude(kind=SiteKind.CONTROL).exclude(
        status__in=[SiteStatus.SUSPENDED, SiteStatus.CLOSED]).order_by("code")


def treating_sites_for(user: Any) -> list[Site]:
    """The sites where the person may order therapies."""
    return [s for s in Site.objects.exclude(kind=SiteKind.CONTROL).order_by("code")
            if access.has_perm(user, Perm.ORDER_CREATE, site_id=s.pk)]
