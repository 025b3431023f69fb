"""The inspector bundle of a batch (REQUIREMENTS.md P11-10b, P11-50, P11-70, ATMP-TRACE, A11-12).

One export per batch: a zip holding the batch record, QC, device data, deviations, custody and
release as JSON (``batch.json``), every signature with the signer's training status at the moment
of signing (``signatures.json``), the batch's slice of the audit trail with every hashed field
(``ledger.jsonl``), the same content laid out for reading (``dossier.pdf``), a manifest of hashes
(``manifest.json``, ``manifest.sha256``) and a verification script that needs only Python's
standard library (``verify_bundle.py``, the module :mod:`pocare.release.bundle_verify`).

:func:`bundle_export` is the service: it reads, builds the zip and records the export as a
``release.bundle_exported`` event on the batch's site chain, with the manifest's hash. See
docs/inspector-bundle.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Count, Max, Min, Q
from django.template.loader import render_to_string
from django.utils import timezone

import pocare
from pocare.accounts import selectors as access
from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Perm, Role
from pocare.core.times import site_time
from pocare.custody.models import Handoff, Shipment, TemperatureUpload
from pocare.jobs.files import JobFile
from pocare.jobs.services import job_enqueue
from pocare.jobs.tasks import Unrecoverable, task
from pocare.ledger import canonical
from pocare.ledger.models import ChainHead, Event, Meaning, Signature
from pocare.ledger.services import event_record
from pocare.ledger.verify import signature_matches_event
from pocare.manufacturing.models import (
    Alarm,
    Batch,
    BatchAbort,
    DevicePush,
    DeviceReading,
    MaterialLot,
    MaterialUse,
    QcResult,
    StepExecution,
    StepValue,
)
from pocare.manufacturing.services import process_steps, specification
from pocare.masterfile.schema import DERIVATIONS
from pocare.quality.models import (
    CapaAction,
    Deviation,
    DeviationClassification,
    DeviationClosure,
    ImpactAssessment,
    Investigation,
)
from pocare.release import bundle_verify
from pocare.release.events import ReleaseEvent
from pocare.release.models import (
    Certification,
    ExceptionReview,
    OosAcceptance,
    OosEvaluation,
    OosRelease,
    QcReview,
)
from pocare.training.gate import step_gate
from pocare.training.selectors import membership_in_force, qualifications_of

BUNDLE_FORMAT = bundle_verify.BUNDLE_FORMAT
#: The files of a bundle, in the order they are written (the manifest and its hash come last).
FILES = ("batch.json", "signatures.json", "ledger.jsonl", "dossier.pdf", "verify_bundle.py")
SCRIPT_SOURCE = Path(bundle_verify.__file__)


class BundleUnavailable(Unrecoverable):
    """The PDF engine (WeasyPrint and its system libraries) cannot run here; the message says so. As a
    job's failure it is final: another try on the same server would fail alike."""


@dataclass(frozen=True)
class BundleExport:
    """An exported bundle: the zip's name, bytes and SHA-256, the manifest's SHA-256 (recorded in
    the ledger) and the label of the export event (e.g. ``MAD#812``)."""

    filename: str
    content: bytes
    sha256: str
    manifest_sha256: str = ""
    event_label: str = ""


# --- plain values ------------------------------------------------------------------------------------


def _ts(value: dt.datetime | None) -> str | None:
    return canonical.format_timestamp(value) if value is not None else None


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _num(value: Any) -> str | None:
    return None if value is None else str(value)


def _person(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "printed_name": user.printed_name or user.username}


def _plain(value: Any) -> Any:
    """JSON's types only, as the ledger reduces them (datetimes in UTC with a Z, decimals as text)."""
    return json.loads(canonical.canonical_json(value))


# --- what belongs to the batch --------------------------------------------------------------------


@dataclass
class _Records:
    """The batch and every record of it, read once."""

    batch: Batch
    abort: BatchAbort | None
    steps: list[StepExecution]
    values: list[StepValue]
    materials: list[MaterialUse]
    lots: list[MaterialLot]
    qc: list[QcResult]
    alarms: list[Alarm]
    pushes: list[DevicePush]
    handoffs: list[Handoff]
    shipments: list[Shipment]
    uploads: list[TemperatureUpload]
    deviations: list[Deviation]
    classifications: list[DeviationClassification]
    investigations: list[Investigation]
    capa: list[CapaAction]
    impacts: list[ImpactAssessment]
    closures: list[DeviationClosure]
    exception_reviews: list[ExceptionReview]
    qc_reviews: list[QcReview]
    certifications: list[Certification]
    oos: list[OosRelease]

    def all(self) -> list[models.Model]:
        order = self.batch.order
        return [self.batch, order, *order.collections.all(), *([self.abort] if self.abort else []), *self.steps,
                *self.values, *self.lots, *self.qc, *self.alarms, *self.pushes, *self.handoffs, *self.shipments,
                *self.uploads, *self.deviations, *self.classifications, *self.investigations, *self.capa,
                *self.impacts, *self.closures, *self.exception_reviews, *self.qc_reviews, *self.certifications,
                *self.oos, *self.oos_stages()]

    def oos_stages(self) -> list[OosRelease]:
        """The OOS release's later stages, signed as records of their own (proxies of the same row)."""
        ids = [o.pk for o in self.oos]
        return [*OosEvaluation.objects.filter(pk__in=ids), *OosAcceptance.objects.filter(pk__in=ids)]


def _records(batch: Batch) -> _Records:
    order = batch.order
    steps = list(StepExecution.objects.filter(batch=batch).select_related(
        "started_by", "performed_by", "verified_by", "equipment").order_by("position"))
    values = list(StepValue.objects.filter(step__batch=batch).select_related("entered_by", "deviation")
                  .order_by("step__position", "entered_at", "pk"))
    materials = list(MaterialUse.objects.filter(step__batch=batch).select_related("lot", "lot__decided_by")
                     .order_by("step__position", "material_code", "pk"))
    lots = list({m.lot_id: m.lot for m in materials}.values())
    deviations = list(Deviation.objects.filter(Q(batch=batch) | Q(order=order)).select_related(
        "opened_by", "impact_assessed_by", "closed_by").order_by("opened_at", "pk"))
    shipments = list(Shipment.objects.filter(order=order).select_related("created_by").order_by("dispatched_at", "pk"))
    return _Records(
        batch=batch,
        abort=BatchAbort.objects.filter(batch=batch).select_related("aborted_by").first(),
        steps=steps, values=values, materials=materials, lots=lots,
        qc=list(QcResult.objects.filter(batch=batch).select_related("entered_by", "deviation")
                .order_by("attribute_id", "entered_at", "pk")),
        alarms=list(Alarm.objects.filter(batch=batch).select_related("acknowledged_by", "deviation")
                    .order_by("raised_at", "pk")),
        pushes=list(DevicePush.objects.filter(readings__batch=batch).distinct().select_related("pushed_by")
                    .order_by("received_at", "pk")),
        handoffs=list(Handoff.objects.filter(order=order).select_related(
            "site", "performed_by", "deviation", "collection", "batch").order_by("occurred_at", "pk")),
        shipments=shipments,
        uploads=list(TemperatureUpload.objects.filter(shipment__in=shipments).select_related(
            "uploaded_by", "deviation").order_by("uploaded_at", "pk")),
        deviations=deviations,
        classifications=list(DeviationClassification.objects.filter(deviation__in=deviations)
                             .select_related("classified_by").order_by("classified_at", "pk")),
        investigations=list(Investigation.objects.filter(deviation__in=deviations).select_related("completed_by")
                            .order_by("completed_at", "pk")),
        capa=list(CapaAction.objects.filter(deviation__in=deviations).select_related(
            "owner", "done_by", "effectiveness_checked_by", "change_request").order_by("due_on", "pk")),
        impacts=list(ImpactAssessment.objects.filter(deviation__in=deviations).select_related("assessed_by")
                     .order_by("assessed_at", "pk")),
        closures=list(DeviationClosure.objects.filter(deviation__in=deviations).select_related("closed_by")),
        exception_reviews=list(ExceptionReview.objects.filter(batch=batch).select_related("reviewer")
                               .order_by("reviewed_at", "pk")),
        qc_reviews=list(QcReview.objects.filter(batch=batch).select_related("reviewer").order_by("reviewed_at", "pk")),
        certifications=list(Certification.objects.filter(batch=batch).select_related("qp", "oos_release")),
        oos=list(OosRelease.objects.filter(batch=batch).select_related("requested_by", "evaluated_by", "accepted_by")
                 .order_by("requested_at", "pk")),
    )


# --- batch.json --------------------------------------------------------------------------------------


def _value(v: StepValue, names: dict[str, str], corrected_by: dict[int, int],
           derived: dict[str, str]) -> dict[str, Any]:
    return {"id": v.pk, "parameter_id": v.parameter_id, "parameter": names.get(v.parameter_id, v.parameter_id),
            "value": v.value, "unit": v.unit, "in_range": v.in_range, "critical": v.critical,
            # A derived value was read from the record that states the fact, not typed (issue 15): what it read.
            "derived_from": derived.get(v.parameter_id),
            "deviation": v.deviation.reference if v.deviation else None, "entered_by": _person(v.entered_by),
            "entered_at": _ts(v.entered_at), "corrects": v.corrects_id, "correction_reason": v.correction_reason,
            "corrected_by": corrected_by.get(v.pk)}


def _lot(lot: MaterialLot) -> dict[str, Any]:
    return {"id": lot.pk, "material_code": lot.material_code, "name": lot.name, "lot_number": lot.lot_number,
            "supplier": lot.supplier, "expiry_date": _date(lot.expiry_date), "status": lot.status,
            "decided_by": _person(lot.decided_by), "decided_at": _ts(lot.decided_at)}


def _in_reading_order(values: list[StepValue], parameters: list[str]) -> list[StepValue]:
    """The master file's parameter order; for each, the original entry followed by its corrections."""
    corrections = {v.corrects_id: v for v in values if v.corrects_id is not None}
    rank = {p: i for i, p in enumerate(parameters)}
    out: list[StepValue] = []
    for first in sorted((v for v in values if v.corrects_id is None),
                        key=lambda v: (rank.get(v.parameter_id, len(rank)), v.parameter_id, v.entered_at, v.pk)):
        current: StepValue | None = first
        while current is not None:
            out.append(current)
            current = corrections.get(current.pk)
    return out


def _steps(r: _Records) -> list[dict[str, Any]]:
    executions = {e.position: e for e in r.steps}
    out = []
    for position, spec in enumerate(process_steps(r.batch)):
        e = executions.get(position)
        names = {p["id"]: p.get("name", p["id"]) for p in spec.get("parameters", [])}
        derived = {p["id"]: DERIVATIONS[p["source"]].reads for p in spec.get("parameters", [])
                   if p.get("type") == "derived" and p.get("source") in DERIVATIONS}
        row: dict[str, Any] = {"position": position, "step_id": spec["id"], "name": spec.get("name", spec["id"]),
                               "unit_operation": spec.get("unit_operation", ""),
                               "second_person_verification": bool(spec.get("second_person_verification"))}
        if e is None:
            out.append({**row, "status": "not_started"})
            continue
        corrected_by = {v.corrects_id: v.pk for v in r.values if v.corrects_id is not None}
        values = _in_reading_order([v for v in r.values if v.step_id == e.pk], list(names))
        out.append({
            **row, "id": e.pk, "status": e.status, "started_by": _person(e.started_by), "started_at": _ts(e.started_at),
            "performed_by": _person(e.performed_by), "performed_at": _ts(e.performed_at),
            "verified_by": _person(e.verified_by), "verified_at": _ts(e.verified_at),
            "equipment": e.equipment.serial if e.equipment else None, "skip_reason": e.skip_reason, "notes": e.notes,
            "values": [_value(v, names, corrected_by, derived) for v in values],
            "materials": [{"id": m.pk, "material_code": m.material_code, "quantity": _num(m.quantity),
                           "lot": _lot(m.lot), "recorded_at": _ts(m.recorded_at), "fefo_reason": m.fefo_reason}
                          for m in r.materials if m.step_id == e.pk],
        })
    return out


def _qc(r: _Records) -> dict[str, Any]:
    attributes = {a["id"]: a for a in specification(r.batch)}
    results = [{"id": q.pk, "attribute_id": q.attribute_id,
                "attribute": attributes.get(q.attribute_id, {}).get("name", q.attribute_id),
                "value_number": q.value_number, "value_text": q.value_text, "unit": q.unit,
                "display_value": q.display_value, "conforms": q.conforms, "method": q.method,
                "tested_at": _ts(q.tested_at), "entered_by": _person(q.entered_by), "entered_at": _ts(q.entered_at),
                "deviation": q.deviation.reference if q.deviation else None, "corrects": q.corrects_id,
                "correction_reason": q.correction_reason} for q in r.qc]
    done = {q.attribute_id for q in r.qc}
    pending = [{"attribute_id": a["id"], "attribute": a.get("name", a["id"]),
                "result_after_release": bool(a.get("result_after_release"))}
               for a in attributes.values() if a["id"] not in done]
    return {"results": results, "without_result": pending}


def _device(r: _Records) -> dict[str, Any]:
    alarms_by = {row["parameter_id"]: row["n"] for row in
                 Alarm.objects.filter(batch=r.batch).values("parameter_id").annotate(n=Count("pk"))}
    parameters = [
        {"parameter_id": row["parameter_id"], "count": row["count"], "min": row["low"], "max": row["high"],
         "readings_out_of_limits": row["outside"], "alarms": alarms_by.get(row["parameter_id"], 0),
         "first": _ts(row["first"]), "last": _ts(row["last"])}
        for row in DeviceReading.objects.filter(batch=r.batch).values("parameter_id").annotate(
            count=Count("pk"), low=Min("value"), high=Max("value"), outside=Count("pk", filter=Q(out_of_limits=True)),
            first=Min("at"), last=Max("at")).order_by("parameter_id")
    ]
    return {
        "parameters": parameters,
        "pushes": [{"id": p.pk, "idempotency_key": p.idempotency_key, "rows": p.rows, "sha256": p.sha256,
                    "received_at": _ts(p.received_at), "pushed_by": _person(p.pushed_by)} for p in r.pushes],
        "alarms": [{"id": a.pk, "parameter_id": a.parameter_id, "raised_at": _ts(a.raised_at), "alarm_min": a.alarm_min,
                    "alarm_max": a.alarm_max, "extreme_value": a.extreme_value,
                    "readings_outside": a.readings_outside, "acknowledged_by": _person(a.acknowledged_by),
                    "acknowledged_at": _ts(a.acknowledged_at), "acknowledgement": a.acknowledgement,
                    "deviation": a.deviation.reference if a.deviation else None} for a in r.alarms],
    }


def _deviations(r: _Records) -> list[dict[str, Any]]:
    out = []
    for d in r.deviations:
        closure = next((c for c in r.closures if c.deviation_id == d.pk), None)
        out.append({
            "id": d.pk, "reference": d.reference, "kind": d.kind, "status": d.status, "title": d.title,
            "description": d.description, "step_id": d.step_id, "source_type": d.source_type, "source_id": d.source_id,
            "opened_at": _ts(d.opened_at), "opened_by": _person(d.opened_by), "opened_by_system": d.opened_by_system,
            "classification": d.classification, "due_at": _ts(d.due_at),
            "classifications": [{"id": c.pk, "severity": c.severity, "occurrence": c.occurrence,
                                 "detectability": c.detectability, "result": c.result, "rationale": c.rationale,
                                 "classified_by": _person(c.classified_by), "classified_at": _ts(c.classified_at)}
                                for c in r.classifications if c.deviation_id == d.pk],
            # Every investigation recorded, oldest first; the last one is in force.
            "investigations": [{"id": i.pk, "findings": i.findings, "root_cause": i.root_cause,
                                "root_cause_category": i.root_cause_category, "completed_by": _person(i.completed_by),
                                "completed_at": _ts(i.completed_at)}
                               for i in r.investigations if i.deviation_id == d.pk],
            "capa": [{"id": c.pk, "kind": c.kind, "description": c.description, "owner": _person(c.owner),
                      "due_on": _date(c.due_on), "change_request": str(c.change_request) if c.change_request else None,
                      "done_at": _ts(c.done_at), "done_by": _person(c.done_by), "done_note": c.done_note,
                      "effectiveness_due_on": _date(c.effectiveness_due_on), "effective": c.effective,
                      "effectiveness_note": c.effectiveness_note,
                      "effectiveness_checked_by": _person(c.effectiveness_checked_by),
                      "effectiveness_checked_at": _ts(c.effectiveness_checked_at)}
                     for c in r.capa if c.deviation_id == d.pk],
            "impact": d.impact, "impact_rationale": d.impact_rationale,
            "impact_assessed_by": _person(d.impact_assessed_by), "impact_assessed_at": _ts(d.impact_assessed_at),
            "impact_assessments": [{"id": a.pk, "impact": a.impact, "rationale": a.rationale,
                                    "deviation_hash": a.deviation_hash, "assessed_by": _person(a.assessed_by),
                                    "assessed_at": _ts(a.assessed_at)}
                                   for a in r.impacts if a.deviation_id == d.pk],
            "closed_by": _person(d.closed_by), "closed_at": _ts(d.closed_at), "closure_summary": d.closure_summary,
            "closure": None if closure is None else {
                "id": closure.pk, "summary": closure.summary, "snapshot": closure.snapshot,
                "snapshot_hash": closure.snapshot_hash, "closed_by": _person(closure.closed_by),
                "closed_at": _ts(closure.closed_at)},
        })
    return out


def _custody(r: _Records) -> dict[str, Any]:
    def readings(u: TemperatureUpload) -> dict[str, Any]:
        agg = u.rows.aggregate(low=Min("celsius"), high=Max("celsius"), outside=Count("pk", filter=Q(in_limits=False)))
        return {"min_celsius": _num(agg["low"]), "max_celsius": _num(agg["high"]), "out_of_limits": agg["outside"]}

    return {
        "handoffs": [{"id": h.pk, "kind": h.kind, "outcome": h.outcome, "site": h.site.code, "location": h.location,
                      "time_zone": h.time_zone, "occurred_at": _ts(h.occurred_at),
                      "performed_by": _person(h.performed_by),
                      "performed_by_name": h.performed_by_name, "expected_identifier": h.expected_identifier,
                      "presented_identifier": h.presented_identifier,
                      "collection": h.collection.din if h.collection else None,
                      "batch": h.batch.reference if h.batch else None,
                      "deviation": h.deviation.reference if h.deviation else None, "notes": h.notes}
                     for h in r.handoffs],
        "shipments": [{"id": s.pk, "leg": s.leg, "logger_id": s.logger_id, "min_celsius": _num(s.min_celsius),
                       "max_celsius": _num(s.max_celsius), "dispatched_at": _ts(s.dispatched_at),
                       "created_by": _person(s.created_by),
                       "uploads": [{"id": u.pk, "uploaded_at": _ts(u.uploaded_at),
                                    "uploaded_by": _person(u.uploaded_by),
                                    "source": u.source, "readings": u.readings, "sha256": u.sha256,
                                    "excursions": u.excursions, **readings(u),
                                    "deviation": u.deviation.reference if u.deviation else None}
                                   for u in r.uploads if u.shipment_id == s.pk]}
                      for s in r.shipments],
    }


def _release(r: _Records) -> dict[str, Any]:
    return {
        "exception_reviews": [{"id": x.pk, "items": x.items, "items_hash": x.items_hash, "comment": x.comment,
                               "reviewer": _person(x.reviewer), "reviewed_at": _ts(x.reviewed_at)}
                              for x in r.exception_reviews],
        "qc_reviews": [{"id": x.pk, "comment": x.comment, "checklist": x.checklist, "checklist_hash": x.checklist_hash,
                        "reviewer": _person(x.reviewer), "reviewed_at": _ts(x.reviewed_at)} for x in r.qc_reviews],
        "certification": next(({"id": c.pk, "decision": c.decision, "reason": c.reason, "checklist": c.checklist,
                                "checklist_hash": c.checklist_hash, "oos_release": c.oos_release_id,
                                "qp": _person(c.qp), "decided_at": _ts(c.decided_at)} for c in r.certifications), None),
        "oos_releases": [{"id": o.pk, "status": o.status, "attributes": o.attributes,
                          "clinical_justification": o.clinical_justification, "requested_by": _person(o.requested_by),
                          "requested_at": _ts(o.requested_at), "risk_evaluation": o.risk_evaluation,
                          "evaluated_by": _person(o.evaluated_by), "evaluated_at": _ts(o.evaluated_at),
                          "acceptance_statement": o.acceptance_statement, "accepted_by": _person(o.accepted_by),
                          "accepted_at": _ts(o.accepted_at), "notifications": o.notifications} for o in r.oos],
    }


def batch_content(r: _Records) -> dict[str, Any]:
    """The batch's record as plain data: what ``batch.json`` holds and the dossier shows."""
    b, order = r.batch, r.batch.order
    version = b.masterfile_version
    content: dict[str, Any] = _plain({
        "batch": {
            "reference": b.reference, "status": b.status, "origin": b.origin,
            "site": {"code": b.site.code, "name": b.site.name, "time_zone": b.site.time_zone,
                     "facility_id": b.site.facility_id},
            "unit": {"serial": b.unit.serial, "device_type": b.unit.device_type, "model": b.unit.model},
            "product": {"code": version.product.code, "name": version.product.name},
            "masterfile_version": {"number": version.number, "content_hash": version.content_hash},
            "started_by": _person(b.started_by), "started_at": _ts(b.started_at), "ended_at": _ts(b.ended_at),
            "end_reason": b.end_reason,
            "abort": None if r.abort is None else {"reason": r.abort.reason, "aborted_by": _person(r.abort.aborted_by),
                                                    "aborted_at": _ts(r.abort.aborted_at)},
        },
        "order": {
            "id": order.pk, "coi": order.coi, "status": order.status, "recipient_id": order.recipient_id,
            "recipient_birth_year": order.recipient_birth_year, "recipient_weight_kg": _num(order.recipient_weight_kg),
            "indication": order.indication, "manufacturing_site": order.site.code,
            "treating_site": order.treating_site.code, "ordered_by": _person(order.ordered_by),
            "ordered_at": _ts(order.ordered_at), "accepted_by": _person(order.accepted_by),
            "accepted_at": _ts(order.accepted_at),
        },
        "collections": [
            {"id": c.pk, "din": c.din, "flags": c.flags, "check_character": c.check_character,
             "din_printed": c.din_printed, "used_by_this_batch": c.pk == b.collection_id,
             "collection_site": c.collection_site.code, "collection_started_at": _ts(c.collection_started_at),
             "collection_ended_at": _ts(c.collection_ended_at), "autologous": c.autologous,
             "volume_ml": _num(c.volume_ml), "donor_tests": c.donor_tests, "expires_at": _ts(c.expires_at),
             "recorded_by": _person(c.recorded_by), "recorded_at": _ts(c.recorded_at)}
            for c in order.collections.select_related("collection_site", "recorded_by").order_by("collection_ended_at")
        ],
        "steps": _steps(r),
        "qc": _qc(r),
        "device_data": _device(r),
        "deviations": _deviations(r),
        "custody": _custody(r),
        "release": _release(r),
    })
    return content


# --- signatures.json ----------------------------------------------------------------------------


def _training_at(sig: Signature, r: _Records, records: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """What the signer held when signing: for a step, the training gate's decision at that moment;
    otherwise the roles (and qualifications) in force then."""
    signer, at = sig.signer, sig.signed_at
    if sig.record_type == StepExecution._meta.label:
        step = records[(sig.record_type, sig.record_id)]
        verifying = sig.meaning == Meaning.VERIFIED
        decision = step_gate(person=signer, version=r.batch.masterfile_version, step_id=step.step_id,
                             site=r.batch.site, at=at, verifying=verifying)
        return {"kind": "step_gate", "step_id": step.step_id, "verifying": verifying, "allowed": decision.allowed,
                "reasons": list(decision.reasons), "valid_until": _ts(decision.until)}
    roles = [{"role": m.role, "role_name": str(Role(m.role).label), "site": m.site.code}
             for m in Membership.objects.filter(user=signer).select_related("site").order_by("site__code", "role")
             if membership_in_force(m, at)]
    held = [{"code": g.qualification.code, "name": g.qualification.name, "valid_until": _ts(g.valid_until)}
            for g in qualifications_of(signer, at)]
    return {"kind": "roles", "roles": roles, "qualifications": held}


def _signatures(r: _Records, records: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    query = Q()
    for label in {k[0] for k in records}:
        query |= Q(record_type=label, record_id__in=[k[1] for k in records if k[0] == label])
    out = []
    for sig in Signature.objects.filter(query).select_related("signer", "event").order_by("signed_at", "pk"):
        record = records[(sig.record_type, sig.record_id)]
        content = None
        if hasattr(record, "signed_content"):
            content = _plain(record.signed_content())
            valid = canonical.content_hash(content) == sig.record_hash
            why = "" if valid else "the record changed after it was signed"
        else:
            valid, why = False, "the record states no signed content"
        if valid and not signature_matches_event(sig, sig.event):
            valid, why = False, "the signature row differs from its ledger event"
        out.append({
            "id": sig.pk, "signer_id": sig.signer_id, "signer": sig.signer_username,
            "printed_name": sig.signer_printed_name, "meaning": sig.meaning,
            "meaning_label": str(Meaning(sig.meaning).label), "signed_at": _ts(sig.signed_at),
            "record_type": sig.record_type, "record_id": sig.record_id, "record_repr": sig.record_repr,
            "record_hash": sig.record_hash, "event": sig.event.label, "chain": sig.chain,
            "valid_now": valid, "invalid_reason": why, "signed_content": content,
            "training_at_signing": _training_at(sig, r, records),
        })
    return out


# --- ledger.jsonl ----------------------------------------------------------------------------------


def _ledger_slice(records: dict[tuple[str, str], Any], heads: dict[str, tuple[int, str]]) -> list[dict[str, Any]]:
    """Every event whose object is one of the batch's records, up to each chain's head as read."""
    query = Q()
    for label in {k[0] for k in records}:
        query |= Q(object_type=label, object_id__in=[k[1] for k in records if k[0] == label])
    rows = []
    for event in Event.objects.filter(query).order_by("chain", "seq"):
        if event.chain not in heads or event.seq > heads[event.chain][0]:
            continue  # appended after the heads were read: not part of this export
        fields = event.hashed_fields()
        rows.append({"label": event.label, "id": event.pk, **dict(zip(canonical.EVENT_FIELDS, fields, strict=True)),
                     "hash": event.hash})
    rows.sort(key=lambda e: (e["occurred_at"], e["chain"], e["seq"]))
    return rows


# --- the dossier -----------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _for_reading(value: Any, tz: Any) -> Any:
    """A copy of plain data with every canonical timestamp written for people: the site's time with its
    zone and UTC beside it (:mod:`pocare.core.times`)."""
    if isinstance(value, dict):
        return {k: _for_reading(v, tz) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_reading(v, tz) for v in value]
    if isinstance(value, str) and _TIMESTAMP.match(value):
        when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        return site_time(when, tz, with_utc=True, seconds=True) or value
    return value


def render_dossier_html(context: dict[str, Any]) -> str:
    """The dossier as one standalone HTML document (styles inline, nothing fetched)."""
    return render_to_string("release/bundle/dossier.html", context)


def pdf_engine_check() -> Any:
    """The WeasyPrint module, or :class:`BundleUnavailable` when its libraries cannot load (cheap after
    the first call: the request asks it before queueing the bundle, and answers 503)."""
    try:
        import weasyprint  # late: WeasyPrint needs Pango from the system; only the PDF answers 503 without it
    except (ImportError, OSError) as exc:
        raise BundleUnavailable(
            "The PDF engine cannot run on this server (WeasyPrint could not load its system libraries: "
            f"{exc}), so the inspector bundle, which includes the PDF dossier, cannot be made; ask the "
            "administrator to install Pango."
        ) from exc
    return weasyprint


def render_pdf(html: str) -> bytes:
    """HTML to PDF through WeasyPrint; :class:`BundleUnavailable` when its libraries cannot load."""
    weasyprint = pdf_engine_check()
    pdf = weasyprint.HTML(string=html, base_url=None).write_pdf()
    if not pdf:
        raise BundleUnavailable("The PDF engine produced no document.")
    return bytes(pdf)


# --- the service ---------------------------------------------------------------------------------


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _zip(folder: str, files: dict[str, bytes], at: dt.datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = at.astimezone(dt.UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name.endswith(".py") else 0o644) << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def bundle_export(*, actor: User, batch: Batch, reason: str = "") -> BundleExport:
    """Build the inspector bundle of ``batch`` and record the export (itself a ledger event on the
    batch's site chain, carrying the manifest's SHA-256), so a copy shown later can be matched to
    the audit trail (P11-10b). Needs the bundle-export permission and sight of the batch's site.

    Raises :class:`BundleUnavailable` when the PDF engine cannot run.
    """
    _may_export(actor, batch)
    exported_at = timezone.now()
    # The heads first: the slice stops at them, so the manifest's head really covers the slice.
    heads = {h.chain: (h.seq, h.hash) for h in ChainHead.objects.all()}
    r = _records(batch)
    records = {(obj._meta.label, str(obj.pk)): obj for obj in r.all()}
    content = batch_content(r)
    signatures = _signatures(r, records)
    events = _ledger_slice(records, heads)
    site_chain = batch.site.code
    chains: dict[str, dict[str, Any]] = {}
    for chain in sorted({e["chain"] for e in events} | {site_chain}):
        mine = [e for e in events if e["chain"] == chain]
        head_seq, head_hash = heads.get(chain, (0, canonical.GENESIS_HASH))
        chains[chain] = {"events": len(mine), "first_seq": min((e["seq"] for e in mine), default=None),
                         "last_seq": max((e["seq"] for e in mine), default=None),
                         "head_seq": head_seq, "head_hash": head_hash}
    files: dict[str, bytes] = {
        "batch.json": _json_bytes(content),
        "signatures.json": _json_bytes({"batch": batch.reference, "signatures": signatures}),
        "ledger.jsonl": "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events).encode("utf-8"),
    }
    content_hash = canonical.content_hash(content)
    tz = batch.site.tz
    html = render_dossier_html({
        "data": _for_reading(content, tz), "signatures": _for_reading(signatures, tz),
        "events": _for_reading(events, tz), "chains": chains, "site_chain": site_chain,
        "exported_at": _for_reading(_ts(exported_at), tz), "exported_by": _person(actor),
        "content_hash": content_hash, "version": pocare.__version__,
        "file_hashes": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "invalid_signatures": sum(1 for s in signatures if not s["valid_now"]),
        "untrained_signatures": sum(1 for s in signatures if s["training_at_signing"].get("allowed") is False),
    })
    files["dossier.pdf"] = render_pdf(html)
    files["verify_bundle.py"] = SCRIPT_SOURCE.read_bytes()
    first, last = (events[0]["label"], events[-1]["label"]) if events else (None, None)
    manifest = {
        "format": BUNDLE_FORMAT,
        "batch": batch.reference,
        "site": site_chain,
        "exported_at": _ts(exported_at),
        "exported_by": _person(actor),
        "pocare_version": pocare.__version__,
        "files": [{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in files.items()],
        "batch_json_content_hash": content_hash,
        "signatures": len(signatures),
        "ledger": {
            "hash_rule": "SHA-256 of the UTF-8 compact JSON array [\"pocare-ledger/1\", "
                         + ", ".join(canonical.EVENT_FIELDS) + "]",
            "events": len(events),
            "first": first,
            "last": last,
            "site_chain": site_chain,
            "site_chain_head": {"seq": chains[site_chain]["head_seq"], "hash": chains[site_chain]["head_hash"]},
            "chains": chains,
        },
        "verify": "python3 verify_bundle.py <this zip>   (or, unzipped, in its folder: python3 verify_bundle.py)",
    }
    manifest_bytes = _json_bytes(manifest)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    stamp = exported_at.strftime("%Y%m%dT%H%M%SZ")
    folder = f"pocare-bundle-{batch.reference}-{stamp}"
    body = _zip(folder, {**files, "manifest.json": manifest_bytes,
                         "manifest.sha256": f"{manifest_sha256}  manifest.json\n".encode("ascii")}, exported_at)
    digest = hashlib.sha256(body).hexdigest()
    with transaction.atomic():
        event = event_record(
            actor=actor, event_type=ReleaseEvent.BUNDLE_EXPORTED, site=batch.site, obj=batch, reason=reason,
            new={"manifest_sha256": manifest_sha256, "sha256": digest, "bytes": len(body), "filename": f"{folder}.zip",
                 "exported_at": exported_at, "events": len(events), "signatures": len(signatures),
                 "ledger_first": first, "ledger_last": last,
                 "head": {"chain": site_chain, "seq": chains[site_chain]["head_seq"],
                          "hash": chains[site_chain]["head_hash"]},
                 "batch_json_content_hash": content_hash},
        )
    return BundleExport(filename=f"{folder}.zip", content=body, sha256=digest, manifest_sha256=manifest_sha256,
                        event_label=event.label)


# --- as a job (docs/jobs.md) -------------------------------------------------------------------------

BUNDLE_TASK = "pocare.release.bundle.bundle_export_work"


def _may_export(actor: User, batch: Batch) -> None:
    if not access.has_perm(actor, Perm.BUNDLE_EXPORT, site_id=batch.site_id):
        raise PermissionDenied(f"{actor.username} may not export inspector bundles.")
    visible = access.sites_with_perm(actor, Perm.BATCH_VIEW)
    if visible is not None and batch.site_id not in visible:
        raise PermissionDenied(f"{actor.username} may not see batch {batch.reference}.")


def bundle_export_request(*, actor: User, batch: Batch, reason: str = "") -> Any:
    """Queue the export of ``batch``'s inspector bundle as a job of ``actor``'s, in the caller's
    transaction (a request that rolls back queues nothing). The job builds the zip, records the export
    (``release.bundle_exported``, as before) and keeps the file for download from its page.
    :class:`BundleUnavailable` at once when this server cannot make PDFs."""
    _may_export(actor, batch)
    pdf_engine_check()
    with transaction.atomic():
        return job_enqueue(task=BUNDLE_TASK, kwargs={"batch_id": batch.pk, "actor_id": actor.pk, "reason": reason},
                           actor=actor, label=f"Inspector bundle of {batch.reference}", site_code=batch.site.code)


@task(max_tries=3, label="Inspector bundle")
def bundle_export_work(*, batch_id: int, actor_id: int, reason: str = "") -> JobFile:
    """The job: build and record the bundle as the person who asked (their permissions checked again
    now: a person who lost them meanwhile gets none)."""
    actor = User.objects.get(pk=actor_id)
    batch = Batch.objects.select_related("site").get(pk=batch_id)
    export = bundle_export(actor=actor, batch=batch, reason=reason)
    return JobFile(content=export.content, download_name=export.filename, content_type="application/zip",
                   summary={"batch": batch.reference, "event": export.event_label,
                            "manifest_sha256": export.manifest_sha256})
