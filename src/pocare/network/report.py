"""The annual report on the master file (POC-4), generated from the records — never typed.

For one calendar year (UTC) and one product: sites added, activated, suspended and closed; each
site's status and units at year end; site authorizations; batches per site; changes to the master
file; deviations. Capabilities that do not exist yet (batch records, deviations) are reported as
such, not as invented numbers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from pocare.core.charts import bar_chart_svg
from pocare.ledger.models import Event, site_chain
from pocare.network.events import NetworkEvent
from pocare.network.models import (
    ManufacturingUnit,
    Site,
    SiteAuthorization,
    SiteKind,
    SiteStatus,
    SiteTransition,
    UnitStatus,
)
from pocare.network.questions import PRODUCT_CHANGES

if TYPE_CHECKING:
    from pocare.masterfile.models import ChangeRequest, Product

BATCHES_NOTE = "Batch records begin with the batch record capability; none are recorded in POCare yet."
DEVIATIONS_NOTE = "Deviations begin with the deviation capability; none are recorded in POCare yet."
EARLIEST_YEAR = 2000

_STATUS_COLOUR = {
    SiteStatus.ACTIVE: "ok", SiteStatus.QUALIFICATION: "info", SiteStatus.ONBOARDING: "info",
    SiteStatus.PROPOSED: "muted", SiteStatus.SUSPENDED: "bad", SiteStatus.CLOSED: "muted",
}


@dataclass
class SiteYear:
    """One site's line in the report."""

    site: Site
    status_at_end: str
    added_in_year: bool
    units_at_end: int
    units_in_service_at_end: int
    units_registered: int
    requalifications: int
    batches: int = 0

    @property
    def status_label(self) -> str:
        return SiteStatus(self.status_at_end).label if self.status_at_end else "—"


@dataclass
class AnnualReport:
    """Everything the annual report states, computed from the records."""

    year: int
    product: Product | None
    start: dt.datetime
    end: dt.datetime
    generated_at: dt.datetime
    sites: list[SiteYear] = field(default_factory=list)
    sites_added: list[Site] = field(default_factory=list)
    transitions: list[SiteTransition] = field(default_factory=list)
    authorizations_granted: list[SiteAuthorization] = field(default_factory=list)
    authorizations_revoked: list[SiteAuthorization] = field(default_factory=list)
    authorizations_in_force: list[SiteAuthorization] = field(default_factory=list)
    changes_raised: list[ChangeRequest] = field(default_factory=list)
    changes_approved: list[ChangeRequest] = field(default_factory=list)
    batches_note: str = BATCHES_NOTE
    deviations_note: str = DEVIATIONS_NOTE
    event: Event | None = None

    @property
    def title(self) -> str:
        product = f" — {self.product.name} ({self.product.code})" if self.product else ""
        return f"Annual report on the POCare Master File {self.year}{product}"

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(days=1)).date()

    @property
    def is_partial(self) -> bool:
        """The year is not over yet: the report covers it up to the moment of generation."""
        return self.generated_at < self.end

    def transitions_to(self, status: str) -> list[SiteTransition]:
        return [t for t in self.transitions if t.to_status == status]

    @property
    def suspended(self) -> list[SiteTransition]:
        return self.transitions_to(SiteStatus.SUSPENDED)

    @property
    def closed(self) -> list[SiteTransition]:
        return self.transitions_to(SiteStatus.CLOSED)

    @property
    def activated(self) -> list[SiteTransition]:
        return self.transitions_to(SiteStatus.ACTIVE)

    @property
    def status_counts(self) -> list[tuple[str, int, str]]:
        counts = Counter(s.status_at_end for s in self.sites if s.status_at_end)
        return [(status.label, counts.get(status.value, 0), _STATUS_COLOUR[status]) for status in SiteStatus]

    @property
    def total_units(self) -> int:
        return sum(s.units_at_end for s in self.sites)

    @property
    def total_batches(self) -> int:
        return sum(s.batches for s in self.sites)

    def status_chart(self) -> str:
        return bar_chart_svg(self.status_counts, title=f"Sites by status at the end of {self.year}", unit="sites")

    def units_chart(self) -> str:
        rows = [(s.site.code, s.units_in_service_at_end, "info") for s in self.sites if s.site.kind != SiteKind.CONTROL]
        return bar_chart_svg(rows, title=f"Manufacturing units in service per site at the end of {self.year}",
                             unit="units")

    def summary(self) -> dict[str, Any]:
        """What the report states, as plain values: its hash goes into the ledger event."""
        return {
            "year": self.year, "product": self.product.code if self.product else None,
            "period": [self.start, min(self.end, self.generated_at)],
            "sites": [{"code": s.site.code, "status": s.status_at_end, "units": s.units_at_end,
                       "units_in_service": s.units_in_service_at_end, "units_registered": s.units_registered,
                       "requalifications": s.requalifications, "batches": s.batches} for s in self.sites],
            "sites_added": [s.code for s in self.sites_added],
            "transitions": [t.pk for t in self.transitions],
            "authorizations": {"granted": [a.pk for a in self.authorizations_granted],
                               "revoked": [a.pk for a in self.authorizations_revoked],
                               "in_force": [a.pk for a in self.authorizations_in_force]},
            "changes": {"raised": [c.reference for c in self.changes_raised],
                        "approved": [c.reference for c in self.changes_approved]},
            "deviations": 0,
        }


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)


def _unit_status_at(end: dt.datetime) -> dict[str, str]:
    """Each unit's status at ``end``, replayed from the ledger (register, requalify, status changes)."""
    status: dict[str, str] = {}
    events = Event.objects.filter(
        object_type="network.ManufacturingUnit", occurred_at__lt=end,
        event_type__in=[NetworkEvent.UNIT_REGISTERED, NetworkEvent.UNIT_REQUALIFIED, NetworkEvent.UNIT_STATUS_CHANGED],
    ).order_by("occurred_at", "id").values_list("object_id", "new_values")
    for object_id, new_values in events:
        new = json.loads(new_values)
        if "status" in new:
            status[object_id] = new["status"]
    return status


def annual_report_build(*, year: int, product: Product | None) -> AnnualReport:
    """Compute the annual report for ``year`` (UTC calendar year) and ``product`` from the records."""
    start, end = _year_bounds(year)
    report = AnnualReport(year=year, product=product, start=start, end=end, generated_at=timezone.now())
    in_year = {"at__gte": start, "at__lt": end}

    report.transitions = list(SiteTransition.objects.filter(**in_year).select_related("site", "actor")
                              .order_by("at", "pk"))
    sites = list(Site.objects.filter(created_at__lt=end).order_by("kind", "code"))
    report.sites_added = [s for s in sites if s.created_at >= start]

    transitions_by_site: dict[int, list[SiteTransition]] = {}
    for t in SiteTransition.objects.filter(at__lt=end).order_by("at", "pk"):
        transitions_by_site.setdefault(t.site_id, []).append(t)
    units = list(ManufacturingUnit.objects.filter(created_at__lt=end))
    unit_status = _unit_status_at(end)
    requalified = Counter(
        site_chain(chain) for chain in
        Event.objects.filter(event_type=NetworkEvent.UNIT_REQUALIFIED, occurred_at__gte=start, occurred_at__lt=end)
        .values_list("chain", flat=True)
    )
    for site in sites:
        history = transitions_by_site.get(site.pk, [])
        if history:
            status_at_end = history[-1].to_status
        else:
            # No transition before year end: the status it was registered with (or has now, when it
            # has never moved).
            later = site.transitions.order_by("at", "pk").first()
            status_at_end = later.from_status if later else site.status
        if status_at_end == SiteStatus.CLOSED and history and history[-1].at < start:
            continue  # closed before the year began: not part of this year's network
        site_units = [u for u in units if u.site_id == site.pk]
        present = [u for u in site_units if unit_status.get(str(u.pk), u.status) != UnitStatus.RETIRED]
        report.sites.append(SiteYear(
            site=site, status_at_end=status_at_end, added_in_year=site.created_at >= start,
            units_at_end=len(present),
            units_in_service_at_end=sum(unit_status.get(str(u.pk), u.status) == UnitStatus.QUALIFIED
                                        for u in present),
            units_registered=sum(u.created_at >= start for u in site_units),
            requalifications=requalified.get(site.code, 0),
        ))

    if product is not None:
        grants = SiteAuthorization.objects.filter(product=product).select_related("site", "granted_by", "revoked_by")
        report.authorizations_granted = list(grants.filter(granted_at__gte=start, granted_at__lt=end)
                                             .order_by("granted_at"))
        report.authorizations_revoked = list(grants.filter(revoked_at__gte=start, revoked_at__lt=end)
                                             .order_by("revoked_at"))
        report.authorizations_in_force = [
            g for g in grants.order_by("site__code", "-valid_from")
            if g.valid_from < end and (g.revoked_at is None or g.revoked_at >= end)
        ]
        report.changes_raised, report.changes_approved = PRODUCT_CHANGES.ask_one(product=product, start=start, end=end)
    return report
