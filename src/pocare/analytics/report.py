"""The product quality review (PQR) of a product over a period (REQUIREMENTS.md POC-2, Q10-PQS),
generated from the records — never typed: batches per site, out-of-specification results
(qualitative ones such as a sterility "growth" included), deviations and their CAPA, changes to the
master file, comparability per attribute and site, capability, and the quality signals raised, with
charts. Computed by :func:`review_build`; generating it is the service
``pocare.analytics.services.product_quality_review_generate``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from pocare.analytics import comparability as cmp
from pocare.analytics import pages, selectors
from pocare.core.charts import bar_chart_svg
from pocare.manufacturing.models import Batch, BatchStatus, QcResult
from pocare.masterfile.models import ChangeRequest, MasterFileVersion, Product
from pocare.quality.models import CapaAction, Deviation, QualitySignal


def products_with_batches() -> list[tuple[str, str]]:
    return [(p.code, f"{p.code} — {p.name}") for p in
            Product.objects.filter(versions__batches__isnull=False).distinct().order_by("code")]


@dataclass
class SiteBatches:
    code: str
    started: int
    completed: int
    aborted: int
    in_progress: int
    oos: int


@dataclass
class VersionReview:
    """Comparability and capability of one version's lots in the period."""

    version: MasterFileVersion
    assessments: list[cmp.AttributeAssessment]
    sections: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ProductQualityReview:
    product: Product
    start: dt.datetime
    end: dt.datetime
    generated_at: dt.datetime
    sites: list[SiteBatches] = field(default_factory=list)
    oos: list[QcResult] = field(default_factory=list)
    attribute_names: dict[str, str] = field(default_factory=dict)
    deviations: list[Deviation] = field(default_factory=list)
    capa: list[CapaAction] = field(default_factory=list)
    changes: list[ChangeRequest] = field(default_factory=list)
    signals: list[QualitySignal] = field(default_factory=list)
    versions: list[VersionReview] = field(default_factory=list)
    event: Any = None

    @property
    def title(self) -> str:
        return f"Product quality review — {self.product.name} ({self.product.code})"

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(days=1)).date()

    @property
    def total_batches(self) -> int:
        return sum(s.started for s in self.sites)

    def batches_chart(self) -> str:
        return bar_chart_svg([(s.code, s.started, "info") for s in self.sites],
                             title="Batches started per site in the period", unit="batches")

    def deviations_by_kind(self) -> list[tuple[str, int]]:
        counts = Counter(d.get_kind_display() for d in self.deviations)
        return sorted(counts.items(), key=lambda kv: -kv[1])

    def oos_by_attribute(self) -> list[tuple[str, int]]:
        counts = Counter(self.attribute_names.get(r.attribute_id, r.attribute_id) for r in self.oos)
        return sorted(counts.items(), key=lambda kv: -kv[1])

    def summary(self) -> dict[str, Any]:
        """What the review states, as plain values: its hash goes into the ledger event."""
        return {
            "product": self.product.code, "period": [self.start, self.end],
            "sites": [s.__dict__ for s in self.sites], "oos": [r.pk for r in self.oos],
            "deviations": [d.reference for d in self.deviations], "capa": [a.pk for a in self.capa],
            "changes": [c.reference for c in self.changes], "signals": [s.pk for s in self.signals],
            "comparability": [
                {"version": v.version.pk, "attribute": a.spec.id,
                 "cells": {code: {"status": c.status, "n": c.n,
                                  "cpk": pages.finite(c.capability.cpk) if c.capability is not None else None}
                           for code, c in a.sites.items()}}
                for v in self.versions for a in v.assessments],
        }


def review_build(*, product: Product, start: dt.datetime, end: dt.datetime) -> ProductQualityReview:
    """Compute the review of ``product`` for batches started in [start, end) (UTC)."""
    pqr = ProductQualityReview(product=product, start=start, end=end, generated_at=timezone.now())
    batches = Batch.objects.filter(masterfile_version__product=product, started_at__gte=start, started_at__lt=end)
    oos = (QcResult.objects.filter(batch__in=batches, correction__isnull=True, conforms=False)
           .select_related("batch__site").order_by("batch__site__code", "tested_at"))
    pqr.oos = list(oos)
    oos_by_site = Counter(r.batch.site.code for r in pqr.oos)
    rows = (batches.values("site__code").annotate(
        started=Count("pk"), completed=Count("pk", filter=Q(status=BatchStatus.COMPLETED)),
        aborted=Count("pk", filter=Q(status=BatchStatus.ABORTED)),
        in_progress=Count("pk", filter=Q(status=BatchStatus.IN_PROGRESS))).order_by("site__code"))
    pqr.sites = [SiteBatches(r["site__code"], r["started"], r["completed"], r["aborted"], r["in_progress"],
                             oos_by_site.get(r["site__code"], 0)) for r in rows]
    pqr.deviations = list(Deviation.objects.filter(Q(product=product) | Q(batch__masterfile_version__product=product),
                                                   opened_at__gte=start, opened_at__lt=end)
                          .select_related("site", "batch").distinct().order_by("site__code", "opened_at"))
    pqr.capa = list(CapaAction.objects.filter(deviation__in=pqr.deviations).select_related("deviation", "owner")
                    .order_by("due_on"))
    pqr.changes = list(ChangeRequest.objects.filter(product=product).filter(
        Q(raised_at__gte=start, raised_at__lt=end) | Q(decided_at__gte=start, decided_at__lt=end))
        .order_by("raised_at"))
    pqr.signals = list(QualitySignal.objects.filter(product=product, raised_at__gte=start, raised_at__lt=end)
                       .select_related("site").order_by("site__code", "raised_at"))
    names: dict[str, str] = {}
    versions = MasterFileVersion.objects.filter(product=product, pk__in=batches.values("masterfile_version")).order_by(
        "number")
    for version in versions:
        for spec in selectors.attribute_specs(version):
            names.setdefault(spec.id, spec.name)
        data = selectors.version_data(None, version, since=start, until=end)
        if not data.lots:
            continue
        vr = VersionReview(version=version, assessments=data.assessments())
        for a in vr.assessments:
            flagged = [pages.attribute_charts(a, code, compact=True) for code, cell in a.sites.items()
                       if cell.alarms or cell.status == cmp.NOT_EQUIVALENT]
            vr.sections.append({"assessment": a, "intervals": pages.interval_plot(a),
                                "cells": [_cell(cell) for cell in a.sites.values()], "flagged": flagged})
        pqr.versions.append(vr)
    pqr.attribute_names = names
    return pqr


def _cell(cell: cmp.SiteAssessment) -> dict[str, Any]:
    view = pages.cell_view(cell)
    c = cell.capability
    if c is not None:
        view.update({"cpk_low": pages.finite(c.cpk_low), "cpk_high": pages.finite(c.cpk_high),
                     "ppk": pages.finite(c.ppk), "cp": pages.finite(c.cp)})
    return view
