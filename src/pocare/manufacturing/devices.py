"""Device data and alarms of the batch record (P11-10h, A11-ALARM, DI-ALCOA).

Automated systems (token clients acting as a named person) push process values in bulk; each
push is checked row by row against the batch's master-file version and stored whole or not at
all. Values outside the version's alarm limits raise an alarm, which a person acknowledges.

Services: :func:`device_data_push`, :func:`alarm_acknowledge`, :func:`reading_correct`. Reads, scoped to the person's
sites: :func:`monitoring_of`, :func:`readings_of`, :func:`alarms_visible`, :func:`alarms_of`,
:func:`series_of`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.services import require_perm
from pocare.core import render
from pocare.core.charts import with_unit
from pocare.ledger.canonical import canonical_json
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import (
    Alarm,
    Batch,
    BatchStatus,
    DevicePush,
    DeviceReading,
    DeviceReadingCorrection,
)
from pocare.manufacturing.selectors import batches_visible
from pocare.masterfile import plausibility
from pocare.quality.models import DeviationKind
from pocare.quality.services import deviation_open

#: How far ahead of the server clock a device's timestamp may be (device clocks drift), and how
#: long before the batch's start (plausibility.py keeps both, with the logger's).
CLOCK_SKEW = plausibility.CLOCK_SKEW
BEFORE_BATCH_START = plausibility.DEVICE_BEFORE_BATCH_START
#: Rows in one push: a day of one-minute values for a handful of batches and parameters, and
#: well inside the request size Django accepts.
MAX_ROWS = 20_000
#: Row problems reported in full; beyond that only the count (a wholly wrong file says so fast).
MAX_PROBLEMS_LISTED = 200
MAX_KEY_LENGTH = 100
ROW_FIELDS = ("batch", "parameter", "time", "value")


# --- what the master file says is monitored ------------------------------------------------------


@dataclass(frozen=True)
class MonitoredParameter:
    """A parameter the device reports for a batch, with the alarm limits of its master-file version."""

    id: str
    name: str
    unit: str
    alarm_min: float | None
    alarm_max: float | None
    physical: plausibility.Bounds = (None, None)

    def outside(self, value: float) -> bool:
        """Outside the alarm limits (a value on a limit is inside)."""
        return (self.alarm_min is not None and value < self.alarm_min) or (
            self.alarm_max is not None and value > self.alarm_max)

    def excess(self, value: float) -> float:
        """How far ``value`` lies beyond the nearer limit it breaks (0 inside): the alarm's
        extreme is the value with the largest excess."""
        if self.alarm_min is not None and value < self.alarm_min:
            return self.alarm_min - value
        if self.alarm_max is not None and value > self.alarm_max:
            return value - self.alarm_max
        return 0.0

    @property
    def limits_text(self) -> str:
        if self.alarm_min is not None and self.alarm_max is not None:
            return with_unit(f"{self.alarm_min:g}–{self.alarm_max:g}", self.unit)
        if self.alarm_min is not None:
            return "≥ " + with_unit(f"{self.alarm_min:g}", self.unit)
        if self.alarm_max is not None:
            return "≤ " + with_unit(f"{self.alarm_max:g}", self.unit)
        return "no alarm limits"


def _number(value: Any) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:  # a whole number beyond any float
        return None


def monitoring_of(batch: Batch) -> list[MonitoredParameter]:
    """The parameters the batch's master-file version monitors, in the version's order."""
    content = batch.masterfile_version.content or {}
    rows = (content.get("process") or {}).get("monitoring") or []
    return [
        MonitoredParameter(id=str(row["id"]), name=str(row.get("name") or row["id"]), unit=str(row.get("unit") or ""),
                           alarm_min=_number(row.get("alarm_min")), alarm_max=_number(row.get("alarm_max")),
                           physical=plausibility.physical_bounds(row))
        for row in rows if isinstance(row, Mapping) and row.get("id")
    ]


# --- pushing device data --------------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one pushed row: its number (from 1), the field and why, in words."""

    row: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.problem}"


class DevicePushRejected(ValidationError):
    """The push had malformed rows; nothing was stored. ``problems`` lists each bad row."""

    def __init__(self, problems: list[RowProblem], total: int) -> None:
        self.problems = problems[:MAX_PROBLEMS_LISTED]
        self.total = total
        shown = [str(p) for p in self.problems]
        if total > len(self.problems):
            shown.append(f"… and {total - len(self.problems)} more problems")
        super().__init__({"rows": shown})


class IdempotencyConflict(Exception):
    """The client used the idempotency key before for a push with other rows."""


@dataclass(frozen=True)
class BatchCount:
    reference: str
    readings: int
    out_of_limits: int


@dataclass
class PushResult:
    """What a push stored. A repeated push (same key, same rows) answers with the original's
    result and ``created=False``."""

    push: DevicePush
    created: bool
    batches: list[BatchCount]
    alarms_raised: list[Alarm] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    number: int
    batch: Batch
    parameter: MonitoredParameter
    at: dt.datetime
    value: float


def rows_sha256(rows: Any) -> str:
    """SHA-256 of the rows as received, in canonical JSON (sorted keys, no spaces): what the push
    record and its ledger event keep, and what tells a repeated push from a different one."""
    try:
        text = canonical_json(rows)
    except (TypeError, ValueError):
        text = repr(rows)  # not JSON (the service is called from Python): still a stable digest
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse_time(text: Any) -> tuple[dt.datetime | None, str]:
    if not isinstance(text, str) or not text.strip():
        return None, "give the time of the value as ISO 8601 text with its offset, e.g. 2026-03-01T14:05:00Z"
    try:
        at = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None, f"{text[:40]!r} is not an ISO 8601 date and time (e.g. 2026-03-01T14:05:00+01:00)"
    if at.tzinfo is None or at.utcoffset() is None:
        return None, f"{text[:40]!r} has no UTC offset; add Z or +hh:mm so the moment is unambiguous"
    try:
        return at.astimezone(dt.UTC), ""
    except OverflowError:
        return None, f"{text[:40]!r} is not a moment a device can have recorded"


def _validate_rows(actor: User, rows: Any, now: dt.datetime) -> tuple[list[_Row], list[RowProblem]]:
    """Check every row; return the good ones and the problems (the push is stored only when there
    are none). Batches are read in one query, scoped to what the pusher may see."""
    if not isinstance(rows, list) or not rows:
        raise ValidationError({"rows": "Send a non-empty list of rows, each {batch, parameter, time, value}."})
    if len(rows) > MAX_ROWS:
        raise ValidationError({"rows": f"{len(rows)} rows in one push; send at most {MAX_ROWS} at a time."})

    references = {r.get("batch") for r in rows if isinstance(r, Mapping) and isinstance(r.get("batch"), str)}
    batches = {b.reference: b for b in batches_visible(actor).select_related("masterfile_version")
               .filter(reference__in=[ref for ref in references if ref])}
    monitored = {ref: {p.id: p for p in monitoring_of(b)} for ref, b in batches.items()}
    may_push = {b.site_id: access.has_perm(actor, Perm.DEVICE_PUSH, site_id=b.site_id) for b in batches.values()}

    good: list[_Row] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, str, dt.datetime], int] = {}
    for number, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            problems.append(RowProblem(number, "row", "each row is an object {batch, parameter, time, value}"))
            continue
        extra = sorted(str(k) for k in row if k not in ROW_FIELDS)
        if extra:
            problems.append(RowProblem(number, "row", f"unknown field(s) {', '.join(extra)}; a row has "
                                                      f"{', '.join(ROW_FIELDS)}"))
        ref = row.get("batch")
        batch = batches.get(ref) if isinstance(ref, str) else None
        parameter = None
        if batch is None:
            problems.append(RowProblem(number, "batch", f"no batch {str(ref)[:40]!r} at your sites"
                                       if ref not in (None, "") else "name the batch by its reference"))
        elif not may_push[batch.site_id]:
            problems.append(RowProblem(number, "batch", f"you may not push device data for batches at "
                                                        f"{batch.site.code}"))
            batch = None
        elif batch.status != BatchStatus.IN_PROGRESS:
            problems.append(RowProblem(number, "batch", f"batch {batch.reference} is "
                                                        f"{BatchStatus(batch.status).label.lower()}; device data "
                                                        "is accepted only while it is in progress"))
            batch = None
        if batch is not None:
            pid = row.get("parameter")
            parameter = monitored[batch.reference].get(pid) if isinstance(pid, str) else None
            if parameter is None:
                allowed = ", ".join(monitored[batch.reference]) or "none"
                problems.append(RowProblem(number, "parameter", f"{str(pid)[:40]!r} is not monitored for "
                                                                f"{batch.reference}; use one of: {allowed}"))
        at, why = _parse_time(row.get("time"))
        if at is None:
            problems.append(RowProblem(number, "time", why))
        else:
            # Between the batch's start less a margin and now plus the clock skew (1900 or 2999 is
            # a device clock or a client fault, not a reading of this batch).
            earliest = batch.started_at - BEFORE_BATCH_START if batch is not None else None
            why = plausibility.window_problem(
                at, earliest=earliest, latest=now + CLOCK_SKEW,
                what=(f"device readings of {batch.reference} (its start less "
                      f"{plausibility.duration_text(BEFORE_BATCH_START)}, to now plus "
                      f"{plausibility.duration_text(CLOCK_SKEW)})" if batch is not None else
                      f"device readings (up to now plus {plausibility.duration_text(CLOCK_SKEW)})"))
            if why:
                problems.append(RowProblem(number, "time", why + "; check the device clock"))
                at = None
        raw = row.get("value")
        value = _number(raw)
        if value is None or not math.isfinite(value):
            problems.append(RowProblem(number, "value", f"{str(raw)[:40]!r} is not a finite number"))
            value = None
        elif parameter is not None and plausibility.outside(value, parameter.physical):
            unit = f" {parameter.unit}" if parameter.unit else ""
            allowed = plausibility.bounds_text(parameter.physical, parameter.unit)
            problems.append(RowProblem(number, "value", f"{value:g}{unit} is not a possible {parameter.name}; "
                                                        f"the physical range is {allowed}"))
            value = None
        if batch is not None and parameter is not None and at is not None and value is not None:
            key = (batch.reference, parameter.id, at)
            if key in seen:
                problems.append(RowProblem(number, "time", f"row {seen[key]} has a value of {parameter.id} for "
                                                           f"{batch.reference} at the same time"))
                continue
            seen[key] = number
            if not extra:
                good.append(_Row(number, batch, parameter, at, value))
    return good, problems


def _already_stored(rows: list[_Row]) -> list[RowProblem]:
    """Rows whose batch, parameter and time were stored by an earlier push (under another key):
    the record keeps one original value per moment (DI-ALCOA). One indexed query per batch."""
    problems = []
    by_batch: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_batch[row.batch.pk].append(row)
    for batch_id, group in by_batch.items():
        first, last = min(r.at for r in group), max(r.at for r in group)
        stored = {(p, at): (key, value) for p, at, key, value in DeviceReading.objects.filter(
            batch_id=batch_id, parameter_id__in={r.parameter.id for r in group}, at__gte=first, at__lte=last,
        ).values_list("parameter_id", "at", "push__idempotency_key", "value")}
        for row in group:
            found = stored.get((row.parameter.id, row.at))
            if found is not None:
                key, value = found
                what = ("the same value is already stored" if value == row.value else
                        f"it contradicts the value {value:g} already stored for that moment")
                problems.append(RowProblem(row.number, "time", f"a value of {row.parameter.id} for "
                                                               f"{row.batch.reference} at {row.at:%Y-%m-%dT%H:%M:%SZ}: "
                                                               f"{what} (push {key[:40]}); one reading per moment, "
                                                               "corrections are recorded beside the original"))
    return sorted(problems, key=lambda p: p.row)


def _result_of(push: DevicePush, *, created: bool) -> PushResult:
    """The result of a stored push, read back from what was stored (so a replay answers alike)."""
    counts = (DeviceReading.objects.filter(push=push).values("batch__reference")
              .annotate(n=Count("pk"), out=Count("pk", filter=Q(out_of_limits=True))).order_by("batch__reference"))
    raised = list(Alarm.objects.filter(first_reading__push=push).select_related("batch").order_by("pk"))
    return PushResult(push=push, created=created,
                      batches=[BatchCount(c["batch__reference"], c["n"], c["out"]) for c in counts],
                      alarms_raised=raised)


def _replay(existing: DevicePush, *, digest: str, rows: int) -> PushResult:
    if existing.sha256 != digest or existing.rows != rows:
        raise IdempotencyConflict(
            f"This idempotency key was already used on {existing.received_at:%Y-%m-%dT%H:%M:%SZ} for a push "
            "with different rows; a repeated push must send exactly the same rows, a new push a new key.")
    return _result_of(existing, created=False)


def device_data_push(*, actor: User, idempotency_key: str, rows: Any) -> PushResult:
    """Store a bulk push of process values from an automated system acting as ``actor``
    (P11-10h: the token names the source; every row is checked before anything is stored).

    Each row is ``{batch, parameter, time, value}``: a batch in progress that the pusher may see
    and push for, a parameter its master-file version monitors, an ISO 8601 time with offset (at
    most ``CLOCK_SKEW`` ahead of the server) and a finite number. Any bad row rejects the whole
    push (:class:`DevicePushRejected`, each row's number and reason). A repeated key with the same
    rows stores nothing and returns the first push's result (``created=False``); with other rows,
    :class:`IdempotencyConflict`.

    Values outside the alarm limits are flagged; each batch and parameter has at most one open
    (unacknowledged) alarm: readings outside while it is open are counted on it (count and
    extreme updated), otherwise a new alarm is raised with its own ledger event. The push writes
    one event on each site's chain with the counts and the rows' SHA-256.
    """
    require_perm(actor, Perm.DEVICE_PUSH)
    key = (idempotency_key or "").strip() if isinstance(idempotency_key, str) else ""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError({"idempotency_key": f"Give each push a unique key of 1 to {MAX_KEY_LENGTH} "
                                                  "printable characters (a UUID is a good choice)."})
    digest = rows_sha256(rows)
    count = len(rows) if isinstance(rows, list) else 0
    # Keys are per client: another client's push under the same key is not looked at.
    existing = DevicePush.objects.filter(pushed_by=actor, idempotency_key=key).first()
    if existing is not None:
        return _replay(existing, digest=digest, rows=count)

    now = timezone.now()
    good, problems = _validate_rows(actor, rows, now)
    if problems:
        raise DevicePushRejected(problems, total=len(problems))
    try:
        with transaction.atomic():
            return _store(actor=actor, key=key, digest=digest, rows=good, now=now)
    except IntegrityError:
        # A concurrent push with the same key committed first: answer as a repeat (or conflict).
        existing = DevicePush.objects.filter(pushed_by=actor, idempotency_key=key).first()
        if existing is None:
            raise
        return _replay(existing, digest=digest, rows=count)


def _store(*, actor: User, key: str, digest: str, rows: list[_Row], now: dt.datetime) -> PushResult:
    # Lock the batches (in pk order, so two pushes cannot deadlock): their status is checked again
    # under the lock, and two pushes for one batch cannot both raise the same alarm.
    locked = {r.batch.pk: r.batch for r in rows}
    statuses = dict(Batch.objects.select_for_update().filter(pk__in=sorted(locked)).order_by("pk")
                    .values_list("pk", "status"))
    ended = sorted(b.reference for pk, b in locked.items() if statuses.get(pk) != BatchStatus.IN_PROGRESS)
    if ended:
        raise ValidationError({"rows": [f"batch {ref} ended while the push was checked; nothing was stored"
                                        for ref in ended]})
    # The key first: a retry racing the original fails here on the unique key and answers as a repeat.
    push = DevicePush.objects.create(idempotency_key=key, pushed_by=actor, received_at=now, rows=len(rows),
                                     sha256=digest)
    # Checked under the batch locks, so two pushes of the same moments under different keys cannot
    # both pass.
    stored = _already_stored(rows)
    if stored:
        raise DevicePushRejected(stored, total=len(stored))
    rows = sorted(rows, key=lambda r: (r.batch.pk, r.parameter.id, r.at, r.number))
    readings = [DeviceReading(push=push, batch_id=r.batch.pk, parameter_id=r.parameter.id, at=r.at, value=r.value,
                              out_of_limits=r.parameter.outside(r.value)) for r in rows]
    DeviceReading.objects.bulk_create(readings, batch_size=2000)
    if readings and readings[0].pk is None:  # a database that does not return ids from bulk inserts
        ids = {(b, p, at): pk for pk, b, p, at in DeviceReading.objects.filter(push=push, out_of_limits=True)
               .values_list("pk", "batch_id", "parameter_id", "at")}
        for reading in readings:
            if reading.out_of_limits:
                reading.pk = ids[(reading.batch_id, reading.parameter_id, reading.at)]

    raised, continued = _alarms_update(actor=actor, rows=rows, readings=readings, batches=locked)

    by_site: dict[int, list[Batch]] = defaultdict(list)
    for batch in locked.values():
        by_site[batch.site_id].append(batch)
    per_batch: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for reading in readings:
        per_batch[reading.batch_id][0] += 1
        per_batch[reading.batch_id][1] += reading.out_of_limits
    for batches in by_site.values():
        site = batches[0].site
        at_site = sorted(batches, key=lambda b: b.reference)
        event_record(
            actor=actor, event_type=ManufacturingEvent.DEVICE_DATA_PUSHED, obj=push, site=site,
            object_repr=f"Device push {key[:80]}",
            reason=f"Device data pushed by {actor.username}",
            new={"idempotency_key": key, "rows": len(rows), "rows_at_site": sum(per_batch[b.pk][0] for b in at_site),
                 "sha256": digest, "received_at": now,
                 "batches": {b.reference: {"readings": per_batch[b.pk][0], "out_of_limits": per_batch[b.pk][1]}
                             for b in at_site},
                 "alarms_raised": [a.pk for a in raised if a.batch_id in {b.pk for b in at_site}],
                 "alarms_continued": {str(a.pk): n for a, n in continued if a.batch_id in {b.pk for b in at_site}}},
        )
    return PushResult(push=push, created=True,
                      batches=[BatchCount(b.reference, per_batch[b.pk][0], per_batch[b.pk][1])
                               for b in sorted(locked.values(), key=lambda b: b.reference)],
                      alarms_raised=sorted(raised, key=lambda a: a.pk))


def _alarms_update(
    *, actor: User, rows: Sequence[_Row], readings: Sequence[DeviceReading], batches: Mapping[int, Batch],
) -> tuple[list[Alarm], list[tuple[Alarm, int]]]:
    """Count out-of-limit readings on the open alarm of their batch and parameter, or raise one."""
    outside: dict[tuple[int, str], list[tuple[_Row, DeviceReading]]] = defaultdict(list)
    for row, reading in zip(rows, readings, strict=True):
        if reading.out_of_limits:
            outside[(reading.batch_id, reading.parameter_id)].append((row, reading))
    if not outside:
        return [], []
    open_alarms = {(a.batch_id, a.parameter_id): a for a in Alarm.objects.select_for_update().filter(
        batch_id__in={b for b, _ in outside}, acknowledged_at__isnull=True).order_by("pk")}
    raised: list[Alarm] = []
    continued: list[tuple[Alarm, int]] = []
    for (batch_id, pid), group in outside.items():
        parameter = group[0][0].parameter
        extreme = max((r.value for r, _ in group), key=parameter.excess)
        alarm = open_alarms.get((batch_id, pid))
        if alarm is not None:
            alarm.readings_outside += len(group)
            if parameter.excess(extreme) > parameter.excess(alarm.extreme_value):
                alarm.extreme_value = extreme
            alarm.save(update_fields=["readings_outside", "extreme_value"])
            continued.append((alarm, len(group)))
            continue
        first_row, first = group[0]
        batch = batches[batch_id]
        alarm = Alarm.objects.create(
            batch=batch, parameter_id=pid, first_reading=first, raised_at=first_row.at,
            alarm_min=parameter.alarm_min, alarm_max=parameter.alarm_max, extreme_value=extreme,
            readings_outside=len(group),
        )
        event_record(
            actor=actor, event_type=ManufacturingEvent.ALARM_RAISED, obj=alarm, site=batch.site,
            reason=f"{parameter.name} outside the alarm limits ({parameter.limits_text}) on {batch.reference}",
            new={"batch": batch.reference, "parameter": pid, "raised_at": first_row.at, "value": first_row.value,
                 "extreme_value": extreme, "readings_outside": len(group), "alarm_min": parameter.alarm_min,
                 "alarm_max": parameter.alarm_max, "first_reading": first.pk},
        )
        raised.append(alarm)
    return raised, continued


# --- acknowledging alarms -------------------------------------------------------------------------


class AlarmAlreadyAcknowledged(ValidationError):
    """An alarm is acknowledged once; the first acknowledgement stands."""


def alarm_acknowledge(*, actor: User, alarm: Alarm, comment: str, raise_deviation: bool = False) -> Alarm:
    """A person acknowledges a device alarm with a comment (A11-ALARM: who, when and what they said
    are recorded in the audit trail); once only. With ``raise_deviation``, a deviation of kind
    *alarm* is opened for the batch in the same transaction and linked to the alarm."""
    site = alarm.batch.site
    if not alarms_visible(actor).filter(pk=alarm.pk).exists():
        raise PermissionDenied("You may not see this alarm.")
    require_perm(actor, Perm.ALARM_ACK, site=site)
    comment = (comment or "").strip() if isinstance(comment, str) else ""
    if not comment:
        raise ValidationError({"comment": "Say what you checked or did: the comment is kept with the "
                                          "acknowledgement in the audit trail."})
    if len(comment) > 2000:
        raise ValidationError({"comment": "Keep the comment under 2,000 characters; put details in a deviation."})
    with transaction.atomic():
        locked = Alarm.objects.select_for_update().get(pk=alarm.pk)  # the alarm row only, not its batch or site
        locked.batch = alarm.batch
        if locked.acknowledged_at is not None:
            by = locked.acknowledged_by.printed_name if locked.acknowledged_by else "someone"
            raise AlarmAlreadyAcknowledged({"alarm": f"This alarm was already acknowledged by {by} at "
                                                     f"{locked.acknowledged_at:%Y-%m-%d %H:%M} UTC."})
        batch = locked.batch
        parameter = {p.id: p for p in monitoring_of(batch)}.get(locked.parameter_id)
        name = parameter.name if parameter else locked.parameter_id
        now = timezone.now()
        deviation = None
        if raise_deviation:
            unit = f" {parameter.unit}" if parameter and parameter.unit else ""
            deviation = deviation_open(
                actor=actor, site=site, kind=DeviationKind.ALARM, source=locked, batch=batch,
                title=f"{name} outside alarm limits on {batch.reference}",
                description=(f"Device alarm raised at {locked.raised_at:%Y-%m-%d %H:%M} UTC: {name} outside "
                             f"{parameter.limits_text if parameter else 'its alarm limits'}; "
                             f"{locked.readings_outside} reading(s) outside, extreme {locked.extreme_value:g}{unit}. "
                             f"Acknowledged by {actor.printed_name or actor.username}: {comment}"),
                reason=comment,
            )
        locked.acknowledged_by, locked.acknowledged_at, locked.acknowledgement = actor, now, comment
        locked.deviation = deviation
        locked.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement", "deviation"])
        event_record(
            actor=actor, event_type=ManufacturingEvent.ALARM_ACKNOWLEDGED, obj=locked, site=site, reason=comment,
            old={"acknowledged_by": None, "acknowledged_at": None},
            new={"batch": batch.reference, "parameter": locked.parameter_id, "acknowledged_by": actor.username,
                 "acknowledged_at": now, "comment": comment, "readings_outside": locked.readings_outside,
                 "extreme_value": locked.extreme_value,
                 "deviation": deviation.reference if deviation is not None else None},
        )
    return locked


# --- correcting a reading -------------------------------------------------------------------------


def reading_correct(*, actor: User, reading: DeviceReading, value: Any, reason: str,
                    credentials: SigningCredentials) -> DeviceReadingCorrection:
    """Correct a device reading beside the original (CH4-9, DI-ALCOA): ``value`` is the corrected
    number, or ``None`` to mark the reading invalid with no replacement (a sensor fault, a device
    clock that was wrong). With a reason and the corrector's signature (authored); once per
    reading. The reading stays as the device sent it; alarms it raised stay with their
    acknowledgement, and charts show the corrected value (an invalid reading is left out)."""
    batch = reading.batch
    if not batches_visible(actor).filter(pk=batch.pk).exists():
        raise PermissionDenied("You may not see this batch.")
    require_perm(actor, Perm.BATCH_EXECUTE, site=batch.site)
    reason = reason_required(reason)
    parameter = {p.id: p for p in monitoring_of(batch)}.get(reading.parameter_id)
    new_value: float | None = None
    if value is not None and not (isinstance(value, str) and not value.strip()):
        try:
            new_value = float(value.strip().replace(",", ".")) if isinstance(value, str) else _number(value)
        except ValueError:
            new_value = None
        if new_value is None or not math.isfinite(new_value):
            raise ValidationError({"value": f"{str(value)[:40]!r} is not a finite number; leave it empty to mark "
                                            "the reading invalid."})
        bounds = parameter.physical if parameter is not None else (None, None)
        if plausibility.outside(new_value, bounds):
            unit = parameter.unit if parameter is not None else ""
            raise ValidationError({"value": f"{new_value:g} {unit} is not a possible value; the physical range is "
                                            f"{plausibility.bounds_text(bounds, unit)}."})
        if new_value == reading.value:
            raise ValidationError({"value": "The corrected value is the same as the reading it corrects."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        DeviceReading.objects.select_for_update().filter(pk=reading.pk).first()
        if DeviceReadingCorrection.objects.filter(reading=reading).exists():
            raise ValidationError({"reading": "This reading has already been corrected; the correction stands "
                                              "beside it."})
        correction = DeviceReadingCorrection.objects.create(reading=reading, value=new_value, reason=reason,
                                                            corrected_by=actor, corrected_at=timezone.now())
        event_record(actor=actor, event_type=ManufacturingEvent.READING_CORRECTED, site=batch.site, obj=correction,
                     reason=reason, old={"reading": reading.pk, "value": reading.value, "at": reading.at},
                     new={"batch": batch.reference, "parameter": reading.parameter_id, "value": new_value,
                          "invalid": new_value is None})
        signature_apply(proof=proof, record=correction, meaning=Meaning.AUTHORED, site=batch.site, reason=reason)
    return correction


# --- reads ----------------------------------------------------------------------------------------


def alarms_visible(user: Any) -> QuerySet[Alarm]:
    """Alarms of the batches the person may see."""
    return Alarm.objects.filter(batch__in=batches_visible(user)).select_related(
        "batch__site", "acknowledged_by", "deviation")


def alarms_of(user: Any, batch: Batch) -> QuerySet[Alarm]:
    """The batch's alarms, newest first (the batch must be one the person may see)."""
    return alarms_visible(user).filter(batch=batch).order_by("-raised_at", "-pk")


def readings_of(
    user: Any, batch: Batch, *, parameter: str | None = None, since: dt.datetime | None = None,
) -> QuerySet[DeviceReading]:
    """The batch's device readings in time order, optionally of one parameter and after ``since``."""
    qs = DeviceReading.objects.filter(batch__in=batches_visible(user).filter(pk=batch.pk))
    if parameter:
        qs = qs.filter(parameter_id=parameter)
    if since is not None:
        qs = qs.filter(at__gt=since)
    # A time outside the years a page can show (stored before the input bounds, or by a restore) is
    # listed by invalid_readings_of, never loaded here: PostgreSQL may hold one Python cannot load.
    return (qs.filter(render.in_window("at")).select_related("push__pushed_by", "correction__corrected_by")
            .order_by("at", "parameter_id", "pk"))


def corrections_of(user: Any, batch: Batch) -> QuerySet[DeviceReadingCorrection]:
    """The corrections of the batch's device readings, newest first, each with its reading."""
    return (DeviceReadingCorrection.objects.filter(reading__batch__in=batches_visible(user).filter(pk=batch.pk))
            .select_related("reading", "corrected_by").order_by("-corrected_at", "-pk"))


def invalid_readings_of(batch: Batch) -> list[dict[str, Any]]:
    """The batch's readings whose time is outside the years a page can show, with the time as stored
    (``raw``, text), ``parameter_id`` and ``value``: shown as "invalid timestamp: …"."""
    return render.outside_window(DeviceReading.objects.filter(batch=batch), "at", "parameter_id", "value")


def series_of(batch: Batch, parameters: Iterable[str]) -> dict[str, list[tuple[dt.datetime, float, bool]]]:
    """Every reading of the batch for charts: ``{parameter: [(at, value, out_of_limits), …]}`` in
    time order, read in one query (the caller has checked that the batch is visible). A corrected
    reading counts with its corrected value; one marked invalid is left out."""
    series: dict[str, list[tuple[dt.datetime, float, bool]]] = {p: [] for p in parameters}
    for pid, at, value, out, corrected, correction in (
            DeviceReading.objects.filter(render.in_window("at"), batch=batch, parameter_id__in=list(series))
            .order_by("parameter_id", "at")
            .values_list("parameter_id", "at", "value", "out_of_limits", "correction__value", "correction__pk")):
        if correction is not None:
            if corrected is None:
                continue
            value = corrected
        series[pid].append((at, value, out))
    return series
