"""Reads of the batch record, scoped to what the person may see (the sites where they hold the
batch-record permission; Control Site roles: the network)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.custody.models import Handoff, HandoffKind, OrderStatus, TherapyOrder
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Signature
from pocare.manufacturing.models import (
    Alarm,
    Batch,
    BatchStatus,
    MaterialLot,
    MaterialUse,
    QcResult,
    StepExecution,
    StepStatus,
    StepValue,
)
from pocare.manufacturing.questions import FirstOut, first_out, unit_reservations
from pocare.manufacturing.services import (
    LATE_FACTOR,
    next_step_of,
    order_start_problems,
    process_steps,
    specification,
)
from pocare.masterfile import windows
from pocare.network.models import ManufacturingUnit, UnitStatus
from pocare.network.selectors import site_today
from pocare.quality.models import Deviation


def batches_visible(user: Any) -> QuerySet[Batch]:
    """Batches the person may see: at the sites where they hold BATCH_VIEW, or all for the Control Site."""
    if not access.has_perm(user, Perm.BATCH_VIEW):
        return Batch.objects.none()
    qs = Batch.objects.select_related("site", "unit", "masterfile_version__product", "order", "collection")
    site_ids = access.sites_with_perm(user, Perm.BATCH_VIEW)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


def batch_for(user: Any, reference: str) -> Batch:
    """The batch ``reference`` if the person may see it; otherwise Batch.DoesNotExist (a 404)."""
    return batches_visible(user).get(reference=reference)


def lots_visible(user: Any) -> QuerySet[MaterialLot]:
    if not access.has_perm(user, Perm.BATCH_VIEW):
        return MaterialLot.objects.none()
    qs = MaterialLot.objects.select_related("site")
    site_ids = access.sites_with_perm(user, Perm.BATCH_VIEW)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


# --- the batch page --------------------------------------------------------------------------------


@dataclass
class SignatureView:
    signature: Signature
    valid: bool
    reason: str


@dataclass
class ValueView:
    """A parameter of a step as recorded: the original entry and its corrections, newest last."""

    spec: dict[str, Any]
    entries: list[StepValue]

    @property
    def current(self) -> StepValue | None:
        return self.entries[-1] if self.entries else None

    @property
    def corrected(self) -> bool:
        return len(self.entries) > 1


@dataclass
class StepView:
    position: int
    spec: dict[str, Any]
    unit_operation: str
    execution: StepExecution | None
    values: list[ValueView]
    materials: list[MaterialUse]
    signatures: list[SignatureView]
    is_next: bool
    late: bool
    window: windows.WindowCheck | None = None

    @property
    def outside_window(self) -> bool:
        return self.window is not None and not self.window.inside

    @property
    def status(self) -> str:
        return self.execution.status if self.execution is not None else "pending"


@dataclass
class QcView:
    attribute: dict[str, Any]
    results: list[QcResult]
    signatures: dict[int, list[SignatureView]]

    @property
    def current(self) -> QcResult | None:
        return self.results[-1] if self.results else None

    @property
    def state(self) -> str:
        cur = self.current
        if cur is None:
            return "after-release" if self.attribute.get("result_after_release") else "pending"
        return "pass" if cur.conforms else "oos"


@dataclass
class BatchPage:
    batch: Batch
    steps: list[StepView]
    qc: list[QcView]
    handoffs: list[Any]
    deviations: list[Deviation]
    alarms_open: int
    batch_signatures: list[SignatureView]
    review: list[ReviewItem] = field(default_factory=list)

    @property
    def done_steps(self) -> int:
        return sum(1 for s in self.steps if s.execution is not None and s.execution.done)


def is_late(execution: StepExecution | None, spec: dict[str, Any]) -> bool:
    """Took longer than LATE_FACTOR × the master file's expected duration."""
    if execution is None or execution.performed_at is None or not spec.get("expected_duration_min"):
        return False
    taken = (execution.performed_at - execution.started_at).total_seconds() / 60
    return taken > LATE_FACTOR * float(spec["expected_duration_min"])


def _signature_views(records: list[Any]) -> dict[tuple[str, str], list[SignatureView]]:
    """Signatures of many records in one query, each checked against its record's content now."""
    by_key: dict[tuple[str, str], Any] = {(r._meta.label, str(r.pk)): r for r in records}
    out: dict[tuple[str, str], list[SignatureView]] = {}
    if not by_key:
        return out
    q = Q()
    for label in {k[0] for k in by_key}:
        q |= Q(record_type=label, record_id__in=[k[1] for k in by_key if k[0] == label])
    hashes: dict[tuple[str, str], str] = {}  # only records that carry a signature are hashed
    for sig in Signature.objects.filter(q).select_related("event").order_by("signed_at", "pk"):
        key = (sig.record_type, sig.record_id)
        if key not in hashes:
            hashes[key] = content_hash(by_key[key].signed_content())
        valid = hashes[key] == sig.record_hash
        out.setdefault(key, []).append(SignatureView(sig, valid, "" if valid else
                                                     "the record changed after it was signed"))
    return out


def batch_page(batch: Batch) -> BatchPage:
    """Everything the batch page shows, in a fixed number of queries whatever the number of steps,
    values, results or signatures (tests/test_query_counts.py keeps it so): the page of a list of one."""
    return batch_pages([batch])[batch.pk]


def batch_pages(batches: Sequence[Batch]) -> dict[int, BatchPage]:
    """The batch page of each batch, by batch id, in the same fixed number of queries for one batch
    or for a page of them (the release queue evaluates a checklist per batch, each on its page)."""
    ids = [b.pk for b in batches]
    executions: dict[int, dict[int, StepExecution]] = {pk: {} for pk in ids}
    for e in StepExecution.objects.filter(batch_id__in=ids).select_related(
            "performed_by", "verified_by", "started_by", "equipment", "window_deviation").prefetch_related(
            Prefetch("values", queryset=StepValue.objects.select_related("entered_by", "deviation").order_by(
                "entered_at", "pk")),
            Prefetch("materials", queryset=MaterialUse.objects.select_related("lot"))):
        executions[e.batch_id][e.position] = e
    results: dict[int, list[QcResult]] = {pk: [] for pk in ids}
    for r in QcResult.objects.filter(batch_id__in=ids).select_related("entered_by", "deviation").order_by(
            "entered_at", "pk"):
        results[r.batch_id].append(r)
    values = [v for by_position in executions.values() for e in by_position.values() for v in e.values.all()]
    signatures = _signature_views([*batches, *(e for by_position in executions.values() for e in by_position.values()),
                                   *values, *(r for rs in results.values() for r in rs)])
    handoffs: dict[int, list[Any]] = {}
    for h in Handoff.objects.filter(order_id__in={b.order_id for b in batches}).select_related(
            "site", "performed_by", "deviation").order_by("occurred_at", "pk"):
        handoffs.setdefault(h.order_id, []).append(h)
    deviations: dict[int, list[Deviation]] = {pk: [] for pk in ids}
    for d in Deviation.objects.filter(batch_id__in=ids).order_by("opened_at", "pk"):
        deviations[d.batch_id].append(d)  # type: ignore[index]
    alarms_open = dict(Alarm.objects.filter(batch_id__in=ids, acknowledged_at__isnull=True).order_by()
                       .values("batch_id").annotate(n=Count("pk")).values_list("batch_id", "n"))
    return {b.pk: _page(b, executions[b.pk], results[b.pk], signatures, handoffs.get(b.order_id, []),
                        deviations[b.pk], alarms_open.get(b.pk, 0)) for b in batches}


def _page(batch: Batch, executions: dict[int, StepExecution], results: list[QcResult],
          signatures: dict[tuple[str, str], list[SignatureView]], handoffs: list[Any], deviations: list[Deviation],
          alarms_open: int) -> BatchPage:
    """One batch's page from the rows loaded for many (:func:`batch_pages`)."""
    process = process_steps(batch)
    upcoming = (next_step_of(process, {p: e.status for p, e in executions.items()})
                if batch.status == BatchStatus.IN_PROGRESS else None)
    checks = windows.check_all(
        process, batch_started_at=batch.started_at,
        performed={e.step_id: e.performed_at for e in executions.values() if e.status != StepStatus.SKIPPED})
    steps = []
    for position, spec in enumerate(process):
        e = executions.get(position)
        views = []
        entries = list(e.values.all()) if e is not None else []
        for p in spec.get("parameters", []):
            chain = _chain([v for v in entries if v.parameter_id == p["id"]])
            views.append(ValueView(p, chain))
        sigs = signatures.get(("manufacturing.StepExecution", str(e.pk)), []) if e is not None else []
        for v in entries:
            sigs = sigs + signatures.get(("manufacturing.StepValue", str(v.pk)), [])
        steps.append(StepView(position, spec, spec["unit_operation"], e, views,
                              list(e.materials.all()) if e is not None else [], sigs,
                              upcoming is not None and upcoming[0] == position, is_late(e, spec),
                              checks.get(spec["id"]) if e is not None else None))

    qc = []
    for attribute in specification(batch):
        rs = _chain([r for r in results if r.attribute_id == attribute["id"]])
        qc.append(QcView(attribute, rs, {r.pk: signatures.get(("manufacturing.QcResult", str(r.pk)), []) for r in rs}))
    page = BatchPage(batch, steps, qc, handoffs, deviations, alarms_open,
                     signatures.get(("manufacturing.Batch", str(batch.pk)), []))
    page.review = review_items(page)
    return page


def _chain(entries: list[Any]) -> list[Any]:
    """Original first, then each correction after the entry it corrects."""
    by_corrects = {e.corrects_id: e for e in entries if e.corrects_id is not None}
    originals = [e for e in entries if e.corrects_id is None]
    out = []
    for first in originals:
        cur = first
        while cur is not None:
            out.append(cur)
            cur = by_corrects.get(cur.pk)
    return out


# --- review by exception -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    """One thing a reviewer must look at, with where to find it on the batch page."""

    kind: str
    severity: str  # "bad" (must be resolved or justified) or "warn" (look at it)
    text: str
    anchor: str
    url: str = ""


def _step_review_items(s: StepView, page: BatchPage) -> list[ReviewItem]:
    """What review by exception lists for one step."""
    items: list[ReviewItem] = []
    anchor = f"step-{s.spec['id']}"
    for v in s.values:
        for entry in v.entries:
            if entry.in_range is False:
                items.append(ReviewItem("Out of range", "bad", f"{s.spec['id']}: {v.spec['name']} = "
                                        f"{entry.value} {entry.unit}".rstrip()
                                        + (f" (deviation {entry.deviation.reference})" if entry.deviation else ""),
                                        anchor))
        if v.corrected:
            items.append(ReviewItem("Correction", "warn", f"{s.spec['id']}: {v.spec['name']} corrected "
                                    f"{len(v.entries) - 1}× — " + " → ".join(str(e.value) for e in v.entries)
                                    + f" ({v.entries[-1].correction_reason})", anchor))
    for m in s.materials:
        if m.fefo_reason:
            items.append(ReviewItem("Not first expiry", "warn", f"{s.spec['id']}: {m.material_code} lot "
                                    f"{m.lot.lot_number} taken before a lot that expires earlier — {m.fefo_reason}",
                                    anchor))
    if s.execution is not None and s.execution.status == StepStatus.SKIPPED:
        items.append(ReviewItem("Skipped step", "warn", f"{s.spec['id']} skipped: {s.execution.skip_reason}",
                                anchor))
    if s.outside_window and s.window is not None and s.execution is not None:
        dev = s.execution.window_deviation
        items.append(ReviewItem("Outside time window", "bad", s.window.message()
                                + (f" Deviation {dev.reference}." if dev else " No deviation recorded."), anchor))
    if s.late and s.execution is not None and s.execution.performed_at is not None:
        minutes = round((s.execution.performed_at - s.execution.started_at).total_seconds() / 60)
        items.append(ReviewItem("Late step", "warn", f"{s.spec['id']} took {minutes} min; the master file "
                                f"expects {s.spec.get('expected_duration_min')} min", anchor))
    if (s.execution is None or not s.execution.done) and (
            page.batch.status != BatchStatus.IN_PROGRESS or s.execution is not None):
        waiting = s.execution is not None and s.execution.status == StepStatus.AWAITING_VERIFICATION
        state = "awaits verification" if waiting else "not done"
        items.append(ReviewItem("Unfinished step", "bad", f"{s.spec['id']} {state}", anchor))
    for sig in s.signatures:
        if not sig.valid:
            items.append(ReviewItem("Invalid signature", "bad", f"{s.spec['id']}: signature of "
                                    f"{sig.signature.signer_printed_name} ({sig.signature.get_meaning_display()}) "
                                    f"— {sig.reason}", anchor))
    return items


def review_items(page: BatchPage) -> list[ReviewItem]:
    """Review by exception: only what needs a reviewer's eyes — out-of-range values, corrections,
    lots taken out of first-expiry order (with the reason), deviations, alarms, steps outside their
    time window, late, skipped or unfinished steps, results out of specification, missing, or pending
    after release, and signatures that no longer hold."""
    items: list[ReviewItem] = []
    for s in page.steps:
        items.extend(_step_review_items(s, page))
    for d in page.deviations:
        items.append(ReviewItem("Deviation", "bad" if d.status == "open" else "warn",
                                f"{d.reference} ({d.get_kind_display()}, {d.get_status_display().lower()}): {d.title}",
                                f"dev-{d.reference}"))
    for q in page.qc:
        a = q.attribute
        cur = q.current
        if cur is not None and not cur.conforms:
            items.append(ReviewItem("Out of specification", "bad", f"{a['name']} = {cur.display_value}"
                                    + (f" (investigation {cur.deviation.reference})" if cur.deviation else ""),
                                    f"qc-{a['id']}"))
        if len(q.results) > 1:
            items.append(ReviewItem("Correction", "warn", f"QC {a['name']} corrected: "
                                    + " → ".join(r.display_value for r in q.results), f"qc-{a['id']}"))
        if cur is None and a.get("result_after_release"):
            items.append(ReviewItem("Result pending after release", "warn",
                                    f"{a['name']} ({a.get('method', '')}) may come after release", f"qc-{a['id']}"))
        elif cur is None and page.batch.status != BatchStatus.IN_PROGRESS:
            items.append(ReviewItem("Result missing", "bad", f"{a['name']} has no result", f"qc-{a['id']}"))
    if page.alarms_open:
        items.append(ReviewItem("Alarm", "bad", f"{page.alarms_open} device alarm(s) not yet acknowledged", "device",
                                reverse("manufacturing:batch_device", args=[page.batch.reference])))
    for h in page.handoffs:
        if h.outcome == "blocked":
            items.append(ReviewItem("Custody", "bad", f"{h.get_kind_display()} blocked: presented "
                                    f"{h.presented_identifier!r}, expected {h.expected_identifier!r}", "custody"))
    return items


# --- work queues (the home page, web/queues.py) ----------------------------------------------------


def steps_awaiting_verification(user: Any) -> QuerySet[StepExecution]:
    """Steps someone else recorded that wait for a second person, at the sites where this person may
    execute batches (the step's gate still decides at the signature). Never the person's own steps."""
    if not access.has_perm(user, Perm.BATCH_EXECUTE) or access.is_read_only(user):
        return StepExecution.objects.none()
    qs = (StepExecution.objects.filter(status=StepStatus.AWAITING_VERIFICATION).exclude(performed_by=user)
          .select_related("batch__site", "performed_by").order_by("performed_at", "pk"))
    site_ids = access.sites_with_perm(user, Perm.BATCH_EXECUTE)
    return qs if site_ids is None else qs.filter(batch__site_id__in=site_ids)


# --- forms' choices and the timeline ---------------------------------------------------------------


def orders_ready_to_start(user: Any, *, include_started: bool = False) -> QuerySet[Any]:
    """Accepted therapy orders whose batch has not started yet, at the sites where the person holds
    BATCH_VIEW."""
    if not access.has_perm(user, Perm.BATCH_VIEW):
        return TherapyOrder.objects.none()
    qs = TherapyOrder.objects.select_related("site", "product").filter(status=OrderStatus.ACCEPTED)
    if not include_started:
        qs = qs.filter(batch__isnull=True)
    site_ids = access.sites_with_perm(user, Perm.BATCH_VIEW)
    return qs if site_ids is None else qs.filter(site_id__in=site_ids)


def units_for(order: Any) -> list[tuple[Any, bool, str]]:
    """The site's units for a batch of ``order``, each with whether it may be used now and why not:
    the order's own checks once, then each unit's, with the batches running on them read at once."""
    now = timezone.now()
    start = order_start_problems(order=order, at=now)
    units = list(ManufacturingUnit.objects.filter(site=order.site).exclude(status=UnitStatus.RETIRED)
                 .select_related("site").order_by("serial"))
    running: dict[int, str] = {}
    for unit_id, reference in (Batch.objects.filter(unit__in=units, status=BatchStatus.IN_PROGRESS)
                               .order_by("-started_at", "-pk").values_list("unit_id", "reference")):
        running.setdefault(unit_id, reference)
    reservations = unit_reservations(unit_ids=[u.pk for u in units], at=now, order=order)
    # The unit booked for this order's patient (its manufacturing slot) is offered first.
    booked = {r.unit_id for r in reservations if r.order_id == order.pk}
    units.sort(key=lambda u: u.pk not in booked)
    out = []
    for unit in units:
        problems = start.with_unit(unit, at=now, running=running, reservations=reservations)
        out.append((unit, not problems, " ".join(problems)))
    return out


def lot_choices(batch: Batch, step: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """For each material of the step, the site's lots a person may pick (usable ones first)."""
    today = site_today(batch.site)
    codes = [m["code"] for m in step.get("materials", [])]
    out: dict[str, list[tuple[str, str]]] = {c: [] for c in codes}
    for lot in MaterialLot.objects.filter(site=batch.site, material_code__in=codes).order_by("expiry_date"):
        usable = lot.status == "released" and lot.expiry_date >= today
        note = "" if usable else f" — {lot.get_status_display().lower()}" if lot.status != "released" else " — expired"
        out[lot.material_code].append((str(lot.pk), f"{lot.lot_number} (exp. {lot.expiry_date:%Y-%m-%d}){note}"))
    return out


def lots_proposed(batch: Batch, step: dict[str, Any], at: dt.datetime | None = None) -> dict[str, FirstOut]:
    """For each material of the step, the lot to take first (first expiry, first out) for the
    quantity of its bill, where an app keeps the material's stock at the batch's site."""
    at = at or timezone.now()
    out: dict[str, FirstOut] = {}
    for m in step.get("materials", []):
        first = first_out(site=batch.site, material_code=m["code"], quantity=Decimal(str(m["quantity"])), at=at)
        if first is not None:
            out[m["code"]] = first
    return out


@dataclass(frozen=True)
class Milestone:
    at: Any
    label: str
    detail: str
    state: str  # done, blocked, pending


def timeline(page: BatchPage) -> list[Milestone]:
    """From collection to infusion: the custody hand-offs, the batch's start and unit operations,
    its QC and its end, in time order; what is still to come is listed last."""
    items: list[Milestone] = []
    for h in page.handoffs:
        items.append(Milestone(h.occurred_at, h.get_kind_display(), f"{h.performed_by_name} at {h.site.code}",
                               "blocked" if h.outcome == "blocked" else "done"))
    seen_ops: set[str] = set()
    names = {uo["id"]: uo.get("name", uo["id"]) for uo in
             (page.batch.masterfile_version.content or {}).get("process", {}).get("unit_operations", [])}
    for s in page.steps:
        e = s.execution
        if e is not None and s.unit_operation not in seen_ops:
            seen_ops.add(s.unit_operation)
            items.append(Milestone(e.started_at, str(names.get(s.unit_operation, s.unit_operation)),
                                   f"from step {s.spec['name']}", "done"))
    finals = [q.current for q in page.qc if q.current is not None]
    if finals:
        last = max(finals, key=lambda r: r.entered_at)
        items.append(Milestone(last.entered_at, "QC results", f"{len(finals)} of {len(page.qc)} attributes", "done"))
    if page.batch.ended_at:
        items.append(Milestone(page.batch.ended_at, page.batch.get_status_display(), page.batch.end_reason, "done"))
    items.sort(key=lambda m: m.at)
    done = {h.kind for h in page.handoffs if h.outcome == "completed"}
    for kind in (HandoffKind.DISPATCH_TO_HOSPITAL, HandoffKind.RECEIPT_AT_HOSPITAL, HandoffKind.INFUSION):
        if kind not in done:
            items.append(Milestone(None, str(kind.label), "to come", "pending"))
    return items


def deviation_qc_source(deviation: Any) -> tuple[str, str] | None:
    """Manufacturing's answer to quality's ``DEVIATION_SOURCE``: the QC result out of
    specification that opened the deviation, shown on its batch page."""
    result = QcResult.objects.filter(deviation=deviation).order_by("entered_at").first()
    if result is None or deviation.batch is None:
        return None
    url = reverse("manufacturing:batch", args=[deviation.batch.reference])
    return f"QC result {result.attribute_id} of batch {deviation.batch.reference}", f"{url}#qc-{result.attribute_id}"
