"""Reads for the comparability pages, the monitor and the product quality review: the current QC
results of a master-file version as arrays per site and attribute, scoped to the sites the person
may see (DESIGN rule 4). ``user=None`` is the monitor, which sees the whole network."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import Exists, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.analytics import pages
from pocare.analytics.comparability import (
    EQUIVALENT,
    NOT_EQUIVALENT,
    TOO_FEW,
    AttributeAssessment,
    AttributeSpec,
    Series,
    assess,
)
from pocare.analytics.models import ComparabilityResult
from pocare.manufacturing.models import Batch, QcResult
from pocare.masterfile.models import MasterFileVersion
from pocare.network.models import Site, SiteKind


def may_view(user: Any) -> bool:
    return user is None or access.has_perm(user, Perm.ANALYTICS_VIEW)


def _site_ids(user: Any) -> set[int] | None:
    if user is None:
        return None
    if not access.has_perm(user, Perm.ANALYTICS_VIEW):
        return set()
    return access.sites_with_perm(user, Perm.ANALYTICS_VIEW)


def sites_visible(user: Any) -> QuerySet[Site]:
    """Manufacturing sites (not the Control Site) the person may see."""
    ids = _site_ids(user)
    qs = Site.objects.exclude(kind=SiteKind.CONTROL).order_by("code")
    return qs if ids is None else qs.filter(pk__in=ids)


def control_time_zone() -> str:
    """The Control Site's IANA zone, in which the network's pages show network-wide moments."""
    return Site.objects.filter(kind=SiteKind.CONTROL).values_list("time_zone", flat=True).first() or "UTC"


def versions(user: Any) -> QuerySet[MasterFileVersion]:
    """Master-file versions that batches were made under, newest product/version first."""
    ids = _site_ids(user)
    # EXISTS, not a join to every batch de-duplicated over the version's text (1.27 s a call at 20×).
    batches = Batch.objects.filter(masterfile_version=OuterRef("pk"))
    if ids is not None:
        batches = batches.filter(site_id__in=ids)
    return MasterFileVersion.objects.select_related("product").filter(Exists(batches)).order_by("product__code",
                                                                                                "-number")


def version_for(user: Any, pk: int | str | None) -> MasterFileVersion | None:
    """The version ``pk`` if the person may see it (else None); without ``pk``, the version with the
    most QC results (the demo's history is under v1 while v2 has just begun)."""
    qs = versions(user)
    if pk in (None, ""):  # the monitor's stored counts: no QC result is read on a request
        lots = ComparabilityResult.objects.filter(version=OuterRef("pk")).order_by().values("version").annotate(
            n=Sum("lots")).values("n")
        return qs.annotate(lots=Coalesce(Subquery(lots), 0)).order_by("-lots", "product__code", "-number").first()
    try:
        return qs.get(pk=int(pk))
    except (ValueError, TypeError, MasterFileVersion.DoesNotExist):
        return None


def attribute_specs(version: MasterFileVersion) -> list[AttributeSpec]:
    """The specification's attributes: numeric ones (min/max) and qualitative ones (``equals``)."""
    out = []
    for a in (version.content.get("specification") or {}).get("attributes") or []:
        acc = a.get("acceptance") or {}
        numeric = acc.get("equals") is None
        out.append(AttributeSpec(
            id=a["id"], name=a.get("name") or a["id"], unit=a.get("unit") or "",
            lsl=float(acc["min"]) if numeric and acc.get("min") is not None else None,
            usl=float(acc["max"]) if numeric and acc.get("max") is not None else None, numeric=numeric))
    return out


@dataclass(frozen=True)
class Lot:
    """One current numeric result, with its batch."""

    batch_id: int
    reference: str
    site: str
    started_at: dt.datetime
    value: float


@dataclass
class VersionData:
    """Everything about one version the pages and the monitor need."""

    version: MasterFileVersion
    specs: list[AttributeSpec]
    sites: list[Site]
    lots: dict[tuple[str, str], list[Lot]] = field(default_factory=dict)

    def series(self, attribute_id: str) -> dict[str, Series]:
        out = {}
        for site in self.sites:
            lots = self.lots.get((site.code, attribute_id), [])
            out[site.code] = Series(site.code, tuple(lot.reference for lot in lots),
                                    np.array([lot.value for lot in lots], dtype=np.float64))
        return out

    def assessments(self) -> list[AttributeAssessment]:
        codes = [s.code for s in self.sites]
        return [assess(spec, self.series(spec.id), sites=codes) for spec in self.specs if spec.numeric]

    def assessment(self, attribute_id: str) -> AttributeAssessment | None:
        spec = next((s for s in self.specs if s.id == attribute_id and s.numeric), None)
        return assess(spec, self.series(spec.id), sites=[s.code for s in self.sites]) if spec else None

    def matrix(self, attribute_ids: list[str] | None = None) -> tuple[list[str], list[dict[str, Lot]]]:
        """The lots for Hotelling's T²: the attribute ids, and per batch with a current result for every
        one of them its results, in batch start order."""
        ids = attribute_ids or [s.id for s in self.specs if s.numeric]
        by_batch: dict[int, dict[str, Lot]] = defaultdict(dict)
        for (_, aid), lots in self.lots.items():
            if aid in ids:
                for lot in lots:
                    by_batch[lot.batch_id][aid] = lot
        rows = [v for v in by_batch.values() if len(v) == len(ids)]
        rows.sort(key=lambda r: (next(iter(r.values())).started_at, next(iter(r.values())).batch_id))
        return ids, rows

    def t2(self, site: str) -> dict[str, Any] | None:
        """Hotelling's T² of ``site``'s lots against the other sites' (``pages.t2_figures``)."""
        ids, rows = self.matrix()
        mine = [r for r in rows if next(iter(r.values())).site == site]
        others = [r for r in rows if next(iter(r.values())).site != site]
        return pages.t2_figures(ids, [[r[a].value for a in ids] for r in mine],
                                [[r[a].value for a in ids] for r in others],
                                [next(iter(r.values())).reference for r in mine])


def current_results(version: MasterFileVersion, site_ids: set[int] | None) -> QuerySet[QcResult]:
    """Current (not corrected) QC results of batches under ``version``."""
    qs = QcResult.objects.filter(batch__masterfile_version=version, correction__isnull=True)
    return qs if site_ids is None else qs.filter(batch__site_id__in=site_ids)


def version_data(user: Any, version: MasterFileVersion, *, until: dt.datetime | None = None,
                 since: dt.datetime | None = None) -> VersionData:
    """The numeric current QC results of ``version`` per (site, attribute), in batch start order, of
    batches started in [``since``, ``until``) when given."""
    ids = _site_ids(user)
    sites = list(sites_visible(user).filter(batches__masterfile_version=version).distinct())
    data = VersionData(version=version, specs=attribute_specs(version), sites=sites)
    qs = current_results(version, ids).filter(value_number__isnull=False)
    if until is not None:
        qs = qs.filter(batch__started_at__lt=until)
    if since is not None:
        qs = qs.filter(batch__started_at__gte=since)
    rows = qs.order_by("batch__started_at", "batch_id").values_list(
        "batch_id", "batch__reference", "batch__site__code", "batch__started_at", "attribute_id", "value_number")
    for batch_id, reference, site, started_at, aid, value in rows:
        if value is None:
            continue
        data.lots.setdefault((site, aid), []).append(Lot(batch_id, reference, site, started_at, float(value)))
    return data


@dataclass
class StoredMatrix:
    """The network matrix of a version as the monitor last computed it (CMP-SITE, CMP-STAT)."""

    computed_at: dt.datetime | None
    attributes: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    network_lots: int = 0
    inputs: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(c["status"] == status for r in self.rows for c in r["cells"])

    @property
    def counts(self) -> dict[str, int]:
        return {"equivalent": self.count(EQUIVALENT), "not_equivalent": self.count(NOT_EQUIVALENT),
                "too_few": self.count(TOO_FEW), "alarms": sum(bool(c["alarms"]) for r in self.rows for c in r["cells"])}


def stored_matrix(user: Any, version: MasterFileVersion) -> StoredMatrix:
    """What the last monitor run stored of ``version``, for the sites the person may see: one query,
    no QC result read."""
    ids = _site_ids(user)
    qs = ComparabilityResult.objects.filter(version=version).select_related("site").defer("charts").order_by(
        "site__code", "position")  # the charts' figures are the site page's: megabytes at 10,000 batches
    if ids is not None:
        qs = qs.filter(site_id__in=ids)
    attributes: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, Any]] = {}
    matrix = StoredMatrix(computed_at=None, attributes=[], rows=[])
    for r in qs:
        matrix.computed_at = r.computed_at if matrix.computed_at is None else max(matrix.computed_at, r.computed_at)
        attributes.setdefault(r.attribute_id, {"id": r.attribute_id, "position": r.position, "lots": r.network_lots,
                                               "inputs_hash": r.inputs_hash, **r.attribute})
        row = rows.setdefault(r.site.code, {"site": r.site, "cells": []})
        row["cells"].append({**r.cell, "attribute_id": r.attribute_id, "status": r.status, "reason": r.reason})
    matrix.attributes = sorted(attributes.values(), key=lambda a: a["position"])
    matrix.rows = list(rows.values())
    matrix.network_lots = sum(a["lots"] for a in matrix.attributes)
    return matrix


@dataclass
class StoredSite:
    """One site's charts of a version as the monitor last computed them: per numeric attribute its
    cell, chart figures and interval plot, and the site's Hotelling's T² (CMP-SITE, CMP-STAT)."""

    computed_at: dt.datetime | None
    sections: list[dict[str, Any]]
    t2: dict[str, Any] | None = None


def stored_site(version: MasterFileVersion, site: Site) -> StoredSite:
    """What the last monitor run stored of ``site`` under ``version``: one query, no QC result read."""
    stored = StoredSite(computed_at=None, sections=[])
    for r in ComparabilityResult.objects.filter(version=version, site=site).order_by("position"):
        stored.computed_at = r.computed_at if stored.computed_at is None else max(stored.computed_at, r.computed_at)
        cell = dict(r.cell)
        charts = r.charts
        t2 = cell.pop("t2", None)
        stored.t2 = stored.t2 or t2
        spec = {"id": r.attribute_id, "name": r.attribute.get("name", r.attribute_id),
                "unit": r.attribute.get("unit", ""), "lsl": r.attribute.get("lsl"), "usl": r.attribute.get("usl")}
        stored.sections.append({"spec": spec, "view": {**cell, "status": r.status, "reason": r.reason},
                                "charts": charts, "intervals": r.attribute.get("intervals", {}),
                                "anova": r.attribute.get("anova")})
    return stored
