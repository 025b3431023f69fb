"""The comparability monitor (REQUIREMENTS.md POC-2, CMP-SITE, CMP-STAT; ICH Q10 monitoring): for
every master-file version with batches, every numeric attribute and every site, the control-chart
rules, the CUSUM and equivalence to the rest of the network (``pocare.analytics.comparability``);
an alarm on a current lot or a failed equivalence raises a quality signal routed to Control Site QA
(``pocare.quality.services.signal_raise``). Unattended: the ledger names the system
``comparability-monitor``, one event per run on the network chain.

Fingerprints are stable, so running again raises nothing new for what was already raised:

* a rule: version, site, attribute, rule and the first batch of the episode (a sustained pattern
  is one episode, however many points it goes on to flag);
* a failed equivalence (TOST or quality range): while a signal of it is open, that one; otherwise
  version, site, attribute, rule and the newest current lot — a new lot that still fails, after QA
  resolved the last signal, raises again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.analytics import comparability as cmp
from pocare.analytics import pages, selectors
from pocare.analytics.events import AnalyticsEvent
from pocare.analytics.models import ComparabilityResult
from pocare.analytics.report import review_build
from pocare.core.units import unit_text
from pocare.jobs.services import job_enqueue
from pocare.ledger.canonical import content_hash
from pocare.ledger.services import event_record
from pocare.quality.models import QualitySignal, SignalStatus
from pocare.quality.services import signal_raise

if TYPE_CHECKING:
    from pocare.ledger.models import Event
    from pocare.masterfile.models import MasterFileVersion
    from pocare.network.models import Site

MONITOR_SYSTEM = "comparability-monitor"


def _num(value: Any, digits: int = 6) -> float | None:
    """A finite float for the ledger's canonical JSON (NaN and infinities become null)."""
    f = float(value)
    return round(f, digits) if math.isfinite(f) else None


def fingerprint_of(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class MonitorRun:
    """What one run found and raised."""

    at: dt.datetime
    versions: list[str] = field(default_factory=list)
    cells: int = 0
    equivalent: int = 0
    not_equivalent: int = 0
    too_few: int = 0
    alarms: int = 0
    raised: list[QualitySignal] = field(default_factory=list)
    already_raised: int = 0
    event: Event | None = None

    def summary(self) -> dict[str, Any]:
        return {"at": self.at, "versions": self.versions, "cells": self.cells, "equivalent": self.equivalent,
                "not_equivalent": self.not_equivalent, "too_few_lots": self.too_few, "alarms": self.alarms,
                "raised": [{"site": s.site.code, "attribute": s.attribute_id, "rule": s.rule, "signal": s.pk}
                           for s in self.raised],
                "already_raised": self.already_raised}

    def line(self) -> str:
        return (f"Comparability monitor: {self.cells} site × attribute cells in {len(self.versions)} version(s); "
                f"{self.equivalent} equivalent, {self.not_equivalent} not equivalent, "
                f"{self.too_few} with too few lots; {self.alarms} chart alarm(s); "
                f"{len(self.raised)} signal(s) raised, {self.already_raised} already raised before.")


def _rule_signal(version: MasterFileVersion, spec: cmp.AttributeSpec, cell: cmp.SiteAssessment,
                 hit: cmp.RuleHit) -> tuple[str, str, dict[str, Any]]:
    start, end = next(e for e in reversed(hit.episodes) if e[1] >= cell.recent_from)
    refs = cell.series.references
    chart = cell.chart
    assert chart is not None
    points = [i for i in hit.indices if start <= i <= end]
    evidence = {
        "version": version.pk, "version_label": f"{version.product.code} v{version.number}", "rule": hit.rule,
        "rule_name": hit.name, "episode": [refs[start], refs[end]],
        "points": [{"batch": refs[i], "value": _num(cell.series.values[i])} for i in points][-20:],
        "centre": _num(chart.limits.centre), "sigma": _num(chart.limits.sigma), "ucl": _num(chart.limits.ucl),
        "lcl": _num(chart.limits.lcl), "baseline_lots": chart.limits.baseline, "lots": cell.n,
        "recent": [{"batch": refs[i], "value": _num(cell.series.values[i])} for i in range(cell.recent_from, cell.n)],
        "attribute_name": spec.name, "unit": spec.unit,
    }
    unit = f" {spec.unit}" if spec.unit else ""
    said = hit.name[0].lower() + hit.name[1:] if hit.name[1:2].islower() else hit.name
    summary = unit_text(f"{spec.name} at {cell.site} ({version.product.code} v{version.number}): {said} — "
                        f"{len(points)} flagged lot(s), latest {refs[points[-1]]} "
                        f"({float(cell.series.values[points[-1]]):.4g}{unit}; "
                        f"centre {float(chart.limits.centre):.4g}{unit}).")
    return fingerprint_of("spc", version.pk, cell.site, spec.id, hit.rule, refs[start]), summary, evidence


def _equivalence_evidence(version: MasterFileVersion, spec: cmp.AttributeSpec,
                          cell: cmp.SiteAssessment) -> dict[str, Any]:
    t, qr = cell.tost, cell.quality_range
    assert t is not None and qr is not None
    refs = cell.series.references
    return {
        "version": version.pk, "version_label": f"{version.product.code} v{version.number}",
        "current_lots": [refs[cell.recent_from], refs[-1]], "n": int(cell.current_values.size),
        "difference": _num(t.difference), "ci90": [_num(t.ci_low), _num(t.ci_high)], "margin": _num(t.margin),
        "p_tost": _num(t.p_value), "quality_range": [_num(qr.low), _num(qr.high)], "inside": qr.inside,
        "share_inside": _num(qr.share, 4), "attribute_name": spec.name, "unit": spec.unit,
    }


def _open_fingerprint(site: Site, version: MasterFileVersion, attribute_id: str, rule: str) -> str | None:
    for signal in QualitySignal.objects.filter(site=site, product=version.product, attribute_id=attribute_id,
                                               rule=rule, status=SignalStatus.OPEN).order_by("-raised_at"):
        if isinstance(signal.evidence, dict) and signal.evidence.get("version") == version.pk:
            return signal.fingerprint
    return None


def _raise(run: MonitorRun, *, site: Site, version: MasterFileVersion, attribute_id: str, rule: str, summary: str,
           evidence: dict[str, Any], fingerprint: str) -> None:
    signal, created = signal_raise(site=site, product=version.product, attribute_id=attribute_id, rule=rule,
                                   summary=summary, evidence=evidence, fingerprint=fingerprint)
    if created:
        run.raised.append(signal)
    else:
        run.already_raised += 1


def _attribute_view(assessment: cmp.AttributeAssessment) -> dict[str, Any]:
    spec, anova = assessment.spec, assessment.anova
    return {"name": spec.name, "unit": spec.unit, "lsl": spec.lsl, "usl": spec.usl,
            "network_mean": _num(assessment.network_mean), "network_sd": _num(assessment.network_sd),
            "anova": None if anova is None else {"f": _num(anova.f), "p_value": _num(anova.p_value),
                                                 "sigma2_between": _num(anova.sigma2_between),
                                                 "between_share": _num(anova.between_share)},
            "intervals": pages.intervals_data(assessment)}


def _inputs_hash(assessment: cmp.AttributeAssessment) -> str:
    """sha256 of every lot (site, batch, value) the attribute's assessment was computed from."""
    h = hashlib.sha256()
    for code in sorted(assessment.sites):
        series = assessment.sites[code].series
        for ref, value in zip(series.references, series.values, strict=True):
            h.update(f"{code}|{ref}|{float(value)!r}\n".encode())
    return h.hexdigest()


def _results_store(*, version: MasterFileVersion, sites: dict[str, Site], assessments: list[cmp.AttributeAssessment],
                   at: dt.datetime, t2: dict[str, dict[str, Any] | None]) -> None:
    """Replace what the pages read of ``version`` by this run's assessment (CMP-SITE, CMP-STAT): each
    cell with the figures of its charts, so that a site's page draws them without recomputing; a
    site's Hotelling's T² (one per site, across its attributes) rides on its first attribute's row."""
    rows = []
    for position, a in enumerate(assessments):
        attribute, digest = _attribute_view(a), _inputs_hash(a)
        for code, cell in a.sites.items():
            stored = pages.cell_view(cell)
            if position == 0 and t2.get(code) is not None:
                stored["t2"] = t2[code]
            rows.append(ComparabilityResult(
                version=version, site=sites[code], attribute_id=a.spec.id, position=position, status=cell.status,
                reason=cell.reason, lots=cell.n, network_lots=a.network_n, inputs_hash=digest,
                cell=pages.json_safe(stored), attribute=attribute, computed_at=at,
                charts=pages.json_safe(pages.chart_data(a, code))))
    ComparabilityResult.objects.filter(version=version).delete()
    ComparabilityResult.objects.bulk_create(rows)


def comparability_monitor_run(*, now: dt.datetime | None = None) -> MonitorRun:
    """Assess every version, attribute and site on the lots started before ``now`` (default: the
    server clock), raise the signals, and record the run in the ledger (network chain)."""
    now = now or timezone.now()
    if now.tzinfo is None:
        raise ValueError("now must be UTC-aware")
    run = MonitorRun(at=now)
    with transaction.atomic():
        for version in selectors.versions(None):
            data = selectors.version_data(None, version, until=now)
            if not data.lots:
                continue
            run.versions.append(f"{version.product.code} v{version.number}")
            sites = {s.code: s for s in data.sites}
            assessments = data.assessments()
            _results_store(version=version, sites=sites, assessments=assessments, at=now,
                           t2={code: data.t2(code) for code in sites})
            for assessment in assessments:
                spec = assessment.spec
                for code, cell in assessment.sites.items():
                    if cell.n == 0:
                        continue
                    run.cells += 1
                    run.equivalent += cell.status == cmp.EQUIVALENT
                    run.not_equivalent += cell.status == cmp.NOT_EQUIVALENT
                    run.too_few += cell.status == cmp.TOO_FEW
                    for hit in cell.alarms:
                        run.alarms += 1
                        fingerprint, summary, evidence = _rule_signal(version, spec, cell, hit)
                        _raise(run, site=sites[code], version=version, attribute_id=spec.id, rule=hit.rule,
                               summary=summary, evidence=evidence, fingerprint=fingerprint)
                    tested = cell.tost is not None and cell.current_values.size >= cmp.MIN_TEST_LOTS
                    if not tested:
                        continue
                    failures = []
                    if cell.status == cmp.NOT_EQUIVALENT:
                        failures.append(("tost", f"not equivalent to the network: {cell.reason}"))
                    qr = cell.quality_range
                    if qr is not None and not qr.equivalent:
                        failures.append(("quality-range", f"{qr.inside} of {qr.n} current lots inside the quality "
                                                          f"range {qr.low:.4g} to {qr.high:.4g} (90 % needed)."))
                    for rule, text in failures:
                        fingerprint = (_open_fingerprint(sites[code], version, spec.id, rule)
                                       or fingerprint_of(rule, version.pk, code, spec.id, cell.series.references[-1]))
                        _raise(run, site=sites[code], version=version, attribute_id=spec.id, rule=rule,
                               summary=f"{spec.name} at {code} ({version.product.code} v{version.number}): {text}",
                               evidence=_equivalence_evidence(version, spec, cell), fingerprint=fingerprint)
        run.event = event_record(actor=None, system=MONITOR_SYSTEM, event_type=AnalyticsEvent.MONITOR_RUN, site=None,
                                 object_type="analytics.MonitorRun", object_id=now.isoformat(),
                                 object_repr=f"Comparability monitor run {now:%Y-%m-%d %H:%M} UTC",
                                 reason="Scheduled comparability monitoring", new=run.summary())
    return run


def _review_check(*, actor: Any, product: Any, start: dt.datetime, end: dt.datetime, fmt: str) -> None:
    if not access.has_perm(actor, Perm.ANALYTICS_VIEW):
        raise PermissionDenied(f"{actor.username} may not generate the product quality review.")
    if product is None:
        raise ValidationError({"product": "Choose a product."})
    if fmt not in ("html", "pdf"):
        raise ValidationError({"format": "Use html or pdf."})
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValidationError({"end": "The period must end after it starts (UTC)."})


PQR_PDF_TASK = "pocare.analytics.tasks.product_quality_review_pdf_work"


def product_quality_review_pdf_request(*, actor: Any, product: Any, start: dt.datetime, end: dt.datetime) -> Any:
    """Queue the PDF of the product quality review as a job of ``actor``'s, in the caller's transaction.
    The job generates the review (recording it, as the HTML review is: ``analytics.pqr_generated``,
    format pdf) and keeps the PDF for download from its page."""
    _review_check(actor=actor, product=product, start=start, end=end, fmt="pdf")
    with transaction.atomic():
        return job_enqueue(task=PQR_PDF_TASK, kwargs={"actor_id": actor.pk, "product_id": product.pk,
                                                      "start": start.isoformat(), "end": end.isoformat()},
                           actor=actor, label=f"Product quality review of {product.code} (PDF)")


def product_quality_review_generate(*, actor: Any, product: Any, start: dt.datetime, end: dt.datetime,
                                    fmt: str) -> Any:
    """Generate the product quality review of ``product`` for batches started in [start, end) and
    record that it was generated — by whom, in which format, and the hash of what it said."""
    _review_check(actor=actor, product=product, start=start, end=end, fmt=fmt)
    review = review_build(product=product, start=start, end=end)
    digest = content_hash(review.summary())
    with transaction.atomic():
        review.event = event_record(
            actor=actor, event_type=AnalyticsEvent.PQR_GENERATED, site=None,
            object_type="analytics.ProductQualityReview", object_id=f"{product.code}:{start:%Y-%m-%d}:{end:%Y-%m-%d}",
            object_repr=review.title, reason=f"Product quality review printed ({fmt})",
            new={"product": product.code, "start": start, "end": end, "format": fmt, "content_hash": digest},
        )
    return review
