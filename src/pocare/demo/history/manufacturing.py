"""The history's manufacturing rows: material lots, batches (``origin = demo_history``), step
executions with their values and materials, QC results and the device log — and, through the
ledger's service, one ``HISTORY_LOADED`` event per batch on its site's chain.

No manufacturing service can make these rows: ``lot_receive``/``lot_decide``,
``batch_start``, ``step_record``, ``qc_result_record`` and ``device_data_push`` stamp the
server's clock, sign with a re-authenticated person and check training, equipment and lots at
that moment; the history is months of work done before it was loaded, with no signatures
(a signature needs its signer at the moment of signing, P11-200).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.custody.models import Collection, TherapyOrder
from pocare.demo.history.device import ACKNOWLEDGEMENTS, device_series
from pocare.demo.history.generator import Generator
from pocare.demo.history.plan import SYSTEM, BatchPlan, StepPlan, minutes
from pocare.ledger import canonical
from pocare.ledger.services import event_record
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import (
    Alarm,
    Batch,
    BatchOrigin,
    BatchStatus,
    DevicePush,
    DeviceReading,
    MaterialLot,
    MaterialUse,
    QcResult,
    StepExecution,
    StepValue,
)


def write_lots(lots: list[MaterialLot]) -> None:
    """The lots the generator planned, received and released on their own (past) dates."""
    MaterialLot.objects.bulk_create(lots, batch_size=2000)  # demo: back-dated receipt and release


def write_batches(gen: Generator, plans: list[BatchPlan], orders: list[TherapyOrder],
                  collections: list[Collection]) -> list[Batch]:
    batches = [Batch(reference=p.reference, order=o, collection=c, site=p.site, unit=p.unit,
                     masterfile_version=gen.version,
                     status=BatchStatus.ABORTED if p.failure else BatchStatus.COMPLETED,
                     origin=BatchOrigin.DEMO_HISTORY, started_by=gen.person(Role.OPERATOR, p.site),
                     started_at=p.start, ended_at=p.ended_at, end_reason=p.end_reason)
               for p, o, c in zip(plans, orders, collections, strict=True)]
    Batch.objects.bulk_create(batches)  # demo: back-dated, ended batches (see the module)
    return batches


def write_steps(plans: list[BatchPlan], batches: list[Batch]) -> tuple[list[StepExecution], list[StepPlan]]:
    """The step executions of every batch, each plan remembering its row (values and process
    deviations point at it)."""
    steps, step_plans = [], []
    for p, b in zip(plans, batches, strict=True):
        for s in p.steps:
            uses_unit = s.step.get("equipment_class") in ("clinimacs_prodigy", "lonza_cocoon")
            steps.append(StepExecution(
                batch=b, position=s.position, step_id=s.step["id"], unit_operation=s.step["unit_operation"],
                status=s.status, started_by=s.by, started_at=s.started_at, performed_by=s.by,
                performed_at=s.performed_at, verified_by=s.verified_by, verified_at=s.verified_at,
                equipment=p.unit if uses_unit else None, skip_reason=s.skip_reason))
            s.row = steps[-1]
            step_plans.append(s)
    StepExecution.objects.bulk_create(steps, batch_size=2000)  # demo: back-dated, unsigned steps
    return steps, step_plans


def write_values_and_materials(steps: list[StepExecution], step_plans: list[StepPlan]) -> list[StepValue | MaterialUse]:
    values: list[StepValue] = []
    uses: list[MaterialUse] = []
    for row, s in zip(steps, step_plans, strict=True):
        for v in s.values:
            value = StepValue(step=row, parameter_id=v.parameter_id, value=v.value, unit=v.unit,
                              in_range=v.in_range, critical=v.critical, entered_by=v.entered_by,
                              entered_at=v.entered_at, deviation=v.dev.row if v.dev else None)
            values.append(value)
        for code, lot, quantity in s.materials:
            uses.append(MaterialUse(step=row, lot=lot, material_code=code, quantity=quantity,
                                    recorded_at=s.performed_at))
    StepValue.objects.bulk_create(values, batch_size=2000)  # demo: back-dated values of the steps above
    MaterialUse.objects.bulk_create(uses, batch_size=2000)  # demo: back-dated material use of the steps
    return [*values, *uses]


def write_qc_results(gen: Generator, plans: list[BatchPlan], batches: list[Batch]) -> list[QcResult]:
    qcs = []
    for p, b in zip(plans, batches, strict=True):
        for q in p.qc:
            a = q.attribute
            result = QcResult(batch=b, attribute_id=a["id"], value_number=q.number, value_text=q.text,
                              unit=a.get("unit") or "", conforms=q.conforms, method=a["method"],
                              tested_at=q.tested_at, entered_by=gen.person(Role.QC_ANALYST, p.site),
                              entered_at=q.entered_at, deviation=q.dev.row if q.dev else None)
            qcs.append(result)
    QcResult.objects.bulk_create(qcs, batch_size=2000)  # demo: back-dated, unsigned QC results
    return qcs


@dataclass
class DeviceLog:
    """What the device data of a chunk of batches came to, by batch id."""

    push_sha256: dict[int, str]
    readings: dict[int, int]
    alarms: dict[int, int]


def write_device_data(gen: Generator, plans: list[BatchPlan], batches: list[Batch]) -> DeviceLog:
    """Hourly readings of each monitored parameter over the culture (activation to harvest or
    abort), one push per batch when the culture ends, and alarms where a value left the limits."""
    log = DeviceLog({}, {}, {})
    pushes, readings_of = [], []
    for p, b in zip(plans, batches, strict=True):
        series = device_series(p, gen.monitoring)
        digest = hashlib.sha256("\n".join(f"{pid},{canonical.format_timestamp(at)},{v!r}"
                                          for pid, at, v, _ in series).encode()).hexdigest()
        received = max(at for _, at, _, _ in series) + minutes(p.rng.uniform(5, 30)) if series else b.started_at
        pushes.append(DevicePush(idempotency_key=f"demo-history:{b.reference}",
                                 pushed_by=gen.person(Role.OPERATOR, p.site), received_at=received,
                                 rows=len(series), sha256=digest))
        readings_of.append(series)
    DevicePush.objects.bulk_create(pushes)  # demo: back-dated pushes, one per batch
    rows: list[DeviceReading] = []
    alarm_specs: list[tuple[BatchPlan, Batch, dict[str, Any], tuple[Any, Any]]] = []
    limits = {m["id"]: (m.get("alarm_min"), m.get("alarm_max")) for m in gen.monitoring}
    for p, b, push, series in zip(plans, batches, pushes, readings_of, strict=True):
        readings = [DeviceReading(push=push, batch=b, parameter_id=pid, at=at, value=value, out_of_limits=out)
                    for pid, at, value, out in series]
        rows.extend(readings)
        alarms = _alarms(readings, limits)
        alarm_specs.extend((p, b, a, limits[a["pid"]]) for a in alarms)
        log.readings[b.pk] = len(series)
        log.alarms[b.pk] = len(alarms)
    DeviceReading.objects.bulk_create(rows, batch_size=5000)  # demo: back-dated readings of those pushes
    alarm_rows = []
    for p, b, a, (lo, hi) in alarm_specs:
        reading = a["reading"]
        alarm_rows.append(Alarm(
            batch=b, parameter_id=a["pid"], first_reading=reading, raised_at=reading.at, alarm_min=lo,
            alarm_max=hi, extreme_value=a["extreme"], readings_outside=a["count"],
            acknowledged_by=gen.person(Role.OPERATOR, p.site),
            acknowledged_at=reading.at + minutes(p.rng.uniform(4, 35)),
            acknowledgement=ACKNOWLEDGEMENTS.get(a["pid"], "Checked at the device; value back within limits."),
        ))
    Alarm.objects.bulk_create(alarm_rows)  # demo: alarms raised and acknowledged long ago, unsigned
    gen.counts["readings"] += len(rows)
    gen.counts["alarms"] += len(alarm_rows)
    log.push_sha256 = {b.pk: push.sha256 for b, push in zip(batches, pushes, strict=True)}
    return log


def _alarms(readings: list[DeviceReading], limits: dict[str, tuple[Any, Any]]) -> list[dict[str, Any]]:
    """One alarm per run of consecutive out-of-limits readings of a parameter: its first reading,
    its most extreme value and how many readings were outside."""
    open_alarm: dict[str, dict[str, Any]] = {}
    alarms = []
    for reading in readings:
        pid, value = reading.parameter_id, reading.value
        if not reading.out_of_limits:
            open_alarm.pop(pid, None)
        elif pid in open_alarm:
            a = open_alarm[pid]
            a["count"] += 1
            lo, hi = limits[pid]
            mid = ((lo if lo is not None else value) + (hi if hi is not None else value)) / 2
            if abs(value - mid) > abs(a["extreme"] - mid):
                a["extreme"] = value
        else:
            open_alarm[pid] = {"reading": reading, "extreme": value, "count": 1, "pid": pid}
            alarms.append(open_alarm[pid])
    return alarms


def record_loaded(gen: Generator, plans: list[BatchPlan], batches: list[Batch], collections: list[Collection],
                  log: DeviceLog, rows: list[QcResult | StepValue | MaterialUse]) -> None:
    """One ``HISTORY_LOADED`` ledger event per batch, through the ledger's service: what was loaded,
    with counts, the deviations and a SHA-256 of the batch's generated content. None of these rows
    is signed, so the event also stamps the content of the batch's written-once rows (QC results,
    step values, material use; ``ledger.records``), which `audit verify` recomputes."""
    of_batch: dict[int, list[QcResult | StepValue | MaterialUse]] = {}
    for row in rows:
        of_batch.setdefault(row.batch_id if isinstance(row, QcResult) else row.step.batch_id, []).append(row)
    for p, b, c in zip(plans, batches, collections, strict=True):
        content_sha = content_hash(p, log.push_sha256.get(b.pk, ""))
        n_values = sum(len(s.values) for s in p.steps)
        n_materials = sum(len(s.materials) for s in p.steps)
        event_record(
            actor=None, system=SYSTEM, event_type=ManufacturingEvent.HISTORY_LOADED, site=p.site, obj=b,
            records=of_batch.get(b.pk, []),
            reason="Demo history: loaded, not executed",
            new={"reference": b.reference, "origin": BatchOrigin.DEMO_HISTORY.value, "status": b.status,
                 "unit": p.unit.serial, "masterfile_version": gen.version.number, "coi": p.coi,
                 "din": c.din_printed, "started_at": b.started_at, "ended_at": b.ended_at,
                 "counts": {"steps": len(p.steps), "values": n_values, "materials": n_materials,
                            "qc_results": len(p.qc), "handoffs": len(p.handoffs),
                            "readings": log.readings.get(b.pk, 0),
                            "alarms": log.alarms.get(b.pk, 0)},
                 "deviations": [d.reference for d in p.devs], "sha256": content_sha},
        )


def content_hash(p: BatchPlan, push_sha: str) -> str:
    """SHA-256 of what was generated for the batch (canonical JSON), as the ledger event records it."""
    return canonical.content_hash({
        "reference": p.reference, "site": p.site.code, "unit": p.unit.serial, "coi": p.coi, "din": p.din,
        "order": {k: (v.username if isinstance(v, User) else v) for k, v in p.order.items()},
        "collection": {k: (v.username if isinstance(v, User) else v) for k, v in p.collection.items()},
        "started_at": p.started_at, "ended_at": p.ended_at, "end_reason": p.end_reason,
        "steps": [{"position": s.position, "step": s.step["id"], "status": s.status, "by": s.by.username,
                   "started_at": s.started_at, "performed_at": s.performed_at,
                   "verified_by": s.verified_by.username if s.verified_by else None,
                   "verified_at": s.verified_at, "skip_reason": s.skip_reason,
                   "values": [[v.parameter_id, v.value, v.unit, v.in_range, v.entered_at,
                               v.dev.reference if v.dev else None] for v in s.values],
                   "materials": [[code, lot.lot_number, quantity] for code, lot, quantity in s.materials]}
                  for s in p.steps],
        "qc": [[q.attribute["id"], q.number, q.text, q.conforms, q.tested_at, q.entered_at,
                q.dev.reference if q.dev else None] for q in p.qc],
        "handoffs": [[h.kind, h.outcome, h.at, h.by.username, h.expected, h.presented,
                      h.dev.reference if h.dev else None] for h in p.handoffs],
        "device_push_sha256": push_sha,
    })
