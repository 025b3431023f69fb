"""The release checklist (ATMP-REL, A11-8, A11-12, POC-1, POC-7): everything that could stop a batch
from leaving its site, evaluated by the system from the records — never ticked by a person.

``release_checklist(batch)`` returns one line per condition, each ``pass``, ``fail``, ``pending``
(a result the master file allows after release) or ``not_applicable``, with a sentence saying why
and a link to the record that is the evidence. It also lists the data changed after first entry
(corrections), which the release view and the certificate mark (A11-8).

The number of queries does not depend on the number of steps, values, results or signatures, nor
on the number of batches: ``release_checklists(batches)`` loads the batch pages
(``manufacturing.selectors.batch_pages``) and every row the lines read once for all the batches (the
release queue evaluates a page of them), and ``release_checklist(batch)`` is the same code with a
list of one (tests/release/test_checklist.py keeps both so).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Q
from django.urls import reverse

from pocare.accounts.models import Membership, User
from pocare.accounts.roles import Role
from pocare.core.times import site_time
from pocare.custody.models import HandoffKind
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import AuditReview, Event, Meaning, Signature, chains_with_lanes
from pocare.manufacturing.models import Alarm, Batch, BatchAbort, BatchStatus, StepStatus
from pocare.manufacturing.selectors import BatchPage, ReviewItem, batch_page, batch_pages, review_items
from pocare.manufacturing.services import lot_problems
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion
from pocare.masterfile.selectors import effective_versions, required_training_steps
from pocare.network.models import ManufacturingUnit, SiteStatus, SiteTransition, UnitStatus
from pocare.network.selectors import (
    site_authorizations,
    site_authorized_for,
    site_can_start_batch,
    site_today,
    site_transitions,
)
from pocare.release.models import ExceptionReview
from pocare.release.questions import CERTIFICATION_HOLDS
from pocare.training.gate import PERFORM_ROLES, VERIFY_ROLES
from pocare.training.models import PersonQualification, TrainingKind, TrainingRecord, TrainingStatus
from pocare.training.selectors import grant_valid_at, membership_in_force

PASS, FAIL, PENDING, NOT_APPLICABLE = "pass", "fail", "pending", "not_applicable"

#: The line ids, in the order they are shown (docs/release.md describes each).
LINE_IDS = ("masterfile", "steps", "windows", "people", "units", "materials", "results", "deviations", "custody",
            "alarms", "audit_trail", "exceptions_review")
#: The line an out-of-specification release (ATMP-OOS) may leave failing.
RESULTS_LINE = "results"


@dataclass(frozen=True)
class ChecklistLine:
    """One condition of release: its state, why, where the evidence is, and the findings behind it."""

    id: str
    label: str
    state: str
    detail: str
    evidence: str
    findings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "state": self.state, "detail": self.detail,
                "evidence": self.evidence, "findings": list(self.findings)}


@dataclass(frozen=True)
class ChangedDatum:
    """A value changed after its first entry (A11-8): what, from what to what, by whom and why."""

    kind: str  # "step value" or "QC result"
    where: str
    original: str
    current: str
    corrections: int
    reason: str
    anchor: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "original": self.original, "current": self.current,
                "corrections": self.corrections, "reason": self.reason}


@dataclass(frozen=True)
class ResultLine:
    """One attribute of the specification with its current result, for the release view and certificate."""

    attribute_id: str
    name: str
    acceptance: str
    release_critical: bool
    after_release: bool
    value: str
    state: str  # pass | oos | pending_after_release | missing
    corrected: bool


@dataclass
class Checklist:
    """The evaluated checklist of one batch."""

    batch: Batch
    lines: list[ChecklistLine]
    changed: list[ChangedDatum]
    results: list[ResultLine]
    review: list[ReviewItem]
    page: BatchPage = field(repr=False)

    def line(self, line_id: str) -> ChecklistLine:
        return next(ln for ln in self.lines if ln.id == line_id)

    @property
    def failing(self) -> list[ChecklistLine]:
        return [ln for ln in self.lines if ln.state == FAIL]

    @property
    def all_pass(self) -> bool:
        """Every line passes; ``pending`` only where results may come after release."""
        return all(ln.state in (PASS, NOT_APPLICABLE) or (ln.state == PENDING and ln.id == RESULTS_LINE)
                   for ln in self.lines)

    @property
    def oos_results(self) -> list[ResultLine]:
        """Release-critical attributes whose current result is out of specification."""
        return [r for r in self.results if r.release_critical and r.state == "oos"]

    def snapshot(self) -> dict[str, Any]:
        """What a signature relies on: the lines, the results and the changed data, as evaluated."""
        return {"batch": self.batch.reference, "lines": [ln.as_dict() for ln in self.lines],
                "results": [{"attribute": r.attribute_id, "value": r.value, "state": r.state,
                             "corrected": r.corrected} for r in self.results],
                "changed": [c.as_dict() for c in self.changed]}

    def snapshot_hash(self) -> str:
        return content_hash(self.snapshot())


def review_snapshot(items: list[ReviewItem]) -> list[dict[str, str]]:
    """The review-by-exception items as stored on an ExceptionReview."""
    return [{"kind": i.kind, "severity": i.severity, "text": i.text, "anchor": i.anchor} for i in items]


def review_items_hash(items: list[dict[str, str]]) -> str:
    """What a review by exception is compared on: every item as listed, except that a deviation counts
    by its reference only — a new deviation voids the review, QA assessing or closing a deviation the
    reviewer saw does not (that is signed by QA and checked by the deviations line)."""
    comparable = [{"kind": i["kind"], "anchor": i["anchor"]} if i["kind"] == "Deviation" else i for i in items]
    return content_hash({"items": comparable})


# --- evaluation ------------------------------------------------------------------------------------


def release_checklist(batch: Batch, *, page: BatchPage | None = None) -> Checklist:
    """Evaluate every condition of release for ``batch`` now, from its records: the checklists of a
    list of one, so that the release page and the queue can never disagree."""
    return release_checklists([batch], pages={batch.pk: page} if page is not None else None)[0]


def release_checklists(batches: Sequence[Batch], *, pages: dict[int, BatchPage] | None = None) -> list[Checklist]:
    """Evaluate every condition of release for each batch now, in order, in the same number of
    queries for a page of the release queue as for one batch: the batch pages and every row the
    lines read are loaded once for all the batches (``_Rows``), and each line reads them by batch."""
    if not batches:
        return []
    pages = pages or batch_pages(batches)
    rows = _Rows(batches, pages)
    held = holds_many(batches) if CERTIFICATION_HOLDS.answerers else {}
    out = []
    for batch in batches:
        page = pages[batch.pk]
        ev = _Evidence(batch, page, reverse("manufacturing:batch", args=[batch.reference]), rows)
        lines = [ev.masterfile(), ev.steps(), ev.windows(), ev.people(), ev.units(), ev.materials(),
                 ev.results_line(), ev.deviations(), ev.custody(), ev.alarms(), ev.audit_trail(),
                 ev.exceptions_review()]
        if CERTIFICATION_HOLDS.answerers:
            lines.append(holds_line(batch, held.get(batch.pk)))
        out.append(Checklist(batch, lines, ev.changed(), ev.results, page.review, page))
    return out


def holds_many(batches: Sequence[Batch]) -> dict[int, list[str]]:
    """The holds of each batch: an answerer that also answers for many batches at once (a ``many``
    attribute: batches → one list of reasons per batch) is asked once for the page, so the release
    queue keeps its number of queries; any other is asked batch by batch."""
    out: dict[int, list[str]] = {batch.pk: [] for batch in batches}
    for _name, answerer in CERTIFICATION_HOLDS.each():
        many = getattr(answerer, "many", None)
        answers = many(list(batches)) if many is not None else [answerer(batch) for batch in batches]
        for batch, reasons in zip(batches, answers, strict=True):
            out[batch.pk] += reasons
    return out


def holds_line(batch: Batch, reasons: list[str] | None = None) -> ChecklistLine:
    """What the apps above release hold the batch for (``release.questions.CERTIFICATION_HOLDS``)."""
    if reasons is None:
        reasons = [reason for answer in CERTIFICATION_HOLDS.ask(batch) for reason in answer]
    return _line("holds", "Holds from other apps", reasons, "Nothing holds the batch.",
                 reverse("manufacturing:batch", args=[batch.reference]))


def _line(line_id: str, label: str, problems: list[str], ok: str, evidence: str, *,
          notes: list[str] | None = None, pending: list[str] | None = None) -> ChecklistLine:
    if problems:
        return ChecklistLine(line_id, label, FAIL, problems[0] if len(problems) == 1 else
                             f"{len(problems)} problems: {problems[0]}", evidence, tuple(problems + (notes or [])))
    if pending:
        return ChecklistLine(line_id, label, PENDING, pending[0] if len(pending) == 1 else
                             f"{len(pending)} results may come after release: " + "; ".join(pending), evidence,
                             tuple(pending + (notes or [])))
    return ChecklistLine(line_id, label, PASS, ok, evidence, tuple(notes or []))


class _Rows:
    """What the checklists of many batches read beyond their batch pages, loaded once for all of
    them and kept by batch, site or record: the versions with their change requests, the effective
    version at each start (a), the sites' authorizations and transitions (a, c), the training gate's
    rows (c), the units' history (d), the batches' last ledger events and the signed audit-trail
    reviews that cover them (j), the latest reviews by exception (k) and the signatures of both."""

    def __init__(self, batches: Sequence[Batch], pages: dict[int, BatchPage]) -> None:
        self.versions = {v.pk: v for v in MasterFileVersion.objects.filter(
            pk__in={b.masterfile_version_id for b in batches}).select_related("product", "change_request")
            .defer("document")}  # the YAML source: the parsed content is what the lines read
        sites = {b.site_id: b.site for b in batches}
        self.transitions = site_transitions(sites.values())
        versions = [self.versions[b.masterfile_version_id] for b in batches]
        self.effective = dict(zip([b.pk for b in batches], effective_versions(
            [(b.site, v.product, b.started_at) for b, v in zip(batches, versions, strict=True)]), strict=True))
        self.grants = site_authorizations({(b.site_id, v.product_id) for b, v in zip(batches, versions, strict=True)})
        self.gate = GateRows([(v, b.site, _people(pages[b.pk])) for b, v in zip(batches, versions, strict=True)],
                             transitions=self.transitions)
        units = {e.equipment_id: e.equipment for page in pages.values() for s in page.steps
                 if (e := s.execution) is not None and e.equipment_id is not None}
        self.unit_history = _unit_history(list(units.values()))
        self.last_events = last_batch_events(batches, pages)
        self.trail_review = self._trail_reviews(batches)
        self.exception_review: dict[int, ExceptionReview] = {}
        for r in ExceptionReview.objects.filter(batch_id__in=[b.pk for b in batches]).select_related(
                "reviewer").order_by("-reviewed_at", "-pk"):
            self.exception_review.setdefault(r.batch_id, r)  # the latest of each batch
        self.signatures = self._first_signatures(
            [("ledger.AuditReview", r.pk, Meaning.REVIEWED) for r in self.trail_review.values() if r is not None]
            + [("release.ExceptionReview", r.pk, None) for r in self.exception_review.values()])

    def _trail_reviews(self, batches: Sequence[Batch]) -> dict[int, AuditReview | None]:
        """The audit-trail review that covers each batch's last events. Reviews of a chain follow one
        another, each reading on from the last on every lane: the first that reaches the batch's last
        event on each lane is the one that covers it."""
        reviews: dict[str, list[AuditReview]] = {}
        for r in AuditReview.objects.filter(chain__in={b.site.code for b in batches}).order_by("pk"):
            reviews.setdefault(r.chain, []).append(r)
        return {b.pk: next((r for r in reviews.get(b.site.code, [])
                            if all(r.covers(lane) >= seq for lane, seq in self.last_events[b.pk].items())), None)
                for b in batches}

    @staticmethod
    def _first_signatures(records: list[tuple[str, int, str | None]]) -> dict[tuple[str, int], Signature]:
        """The first signature (of ``meaning``, when given) on each record, by (record type, id)."""
        wanted = {(label, str(pk)): meaning for label, pk, meaning in records}
        out: dict[tuple[str, int], Signature] = {}
        if not wanted:
            return out
        q = Q()
        for label in {label for label, _ in wanted}:
            q |= Q(record_type=label, record_id__in=[pk for lb, pk in wanted if lb == label])
        for sig in Signature.objects.filter(q).order_by("signed_at", "pk"):
            meaning = wanted.get((sig.record_type, sig.record_id), "")
            if meaning is None or sig.meaning == meaning:
                out.setdefault((sig.record_type, int(sig.record_id)), sig)
        return out

    def signature(self, record_type: str, pk: int) -> Signature | None:
        return self.signatures.get((record_type, pk))


def _people(page: BatchPage) -> list[User]:
    """Everyone who performed or verified a step of the batch (the people line checks them)."""
    return [p for s in page.steps if (e := s.execution) is not None
            for p, at in ((e.performed_by, e.performed_at), (e.verified_by, e.verified_at))
            if p is not None and at is not None]


class _Evidence:
    """The checks of one batch, sharing what was loaded once."""

    def __init__(self, batch: Batch, page: BatchPage, batch_url: str, rows: _Rows) -> None:
        self.batch, self.page, self.url, self.rows = batch, page, batch_url, rows
        self.site = batch.site
        self.version = rows.versions[batch.masterfile_version_id]
        self.executions = [s.execution for s in page.steps if s.execution is not None]
        self.results: list[ResultLine] = []

    # (a) POC-1
    def masterfile(self) -> ChecklistLine:
        b, v = self.batch, self.version
        at = b.started_at
        problems = []
        effective = self.rows.effective[b.pk]
        if effective is None or effective.pk != v.pk:
            now = f"v{effective.number}" if effective is not None else "no version"
            problems.append(f"{v} was not the version effective at {self.site.code} when the batch started "
                            f"({now} was).")
        authorized, why = site_authorized_for(self.site, v, at, grants=self.rows.grants[(self.site.pk, v.product_id)])
        if not authorized:
            problems.append(why)
        active, why = site_can_start_batch(self.site, at, transitions=self.rows.transitions[self.site.pk])
        if not active:
            problems.append(why)
        return _line("masterfile", "Master-file version effective and site authorized (POC-1)", problems,
                     f"{v} was effective at {self.site.code} and the site authorized for it when the batch started.",
                     reverse("masterfile:version", args=[v.pk]))

    # (b) P11-10f, P11-50
    def steps(self) -> ChecklistLine:
        problems: list[str] = []
        notes: list[str] = []
        if self.batch.status != BatchStatus.COMPLETED:
            problems.append(f"The batch is {self.batch.get_status_display().lower()}, not completed.")
        for s in self.page.steps:
            sid = s.spec["id"]
            e = s.execution
            if e is None or not e.done:
                problems.append(f"Step {sid} is {'not started' if e is None else e.get_status_display().lower()}.")
                continue
            if e.status == StepStatus.SKIPPED:
                if not s.spec.get("optional"):
                    problems.append(f"Step {sid} was skipped but the master file does not make it optional.")
                else:
                    notes.append(f"Step {sid} skipped as optional: {e.skip_reason}")
            meanings = {sig.signature.meaning for sig in s.signatures
                        if sig.signature.record_type == "manufacturing.StepExecution"}
            if Meaning.PERFORMED not in meanings:
                problems.append(f"Step {sid} has no performer's signature.")
            if (e.status == StepStatus.COMPLETE and s.spec.get("second_person_verification")
                    and Meaning.VERIFIED not in meanings):
                problems.append(f"Step {sid} needs a second-person verification signature and has none.")
            for sig in s.signatures:
                if not sig.valid:
                    problems.append(f"Step {sid}: the signature of {sig.signature.signer_printed_name} "
                                    f"({sig.signature.get_meaning_display()}) no longer holds — {sig.reason}.")
        for sig in self.page.batch_signatures:
            if not sig.valid:
                problems.append(f"The batch start signature of {sig.signature.signer_printed_name} no longer "
                                f"holds — {sig.reason}.")
        for q in self.page.qc:
            for r in q.results:
                for sig in q.signatures.get(r.pk, []):
                    if not sig.valid:
                        problems.append(f"QC {q.attribute['name']}: the signature of "
                                        f"{sig.signature.signer_printed_name} no longer holds — {sig.reason}.")
        n = len(self.page.steps)
        return _line("steps", "Every step complete and signed, every signature valid", problems,
                     f"All {n} steps are complete (or skipped as optional) and signed; every signature holds.",
                     self.url + "#steps", notes=notes)

    # (b2) P11-10f: the process time windows of the master file
    def windows(self) -> ChecklistLine:
        label = "Process time windows"
        windowed = [s for s in self.page.steps if s.window is not None]
        if not windowed:
            return ChecklistLine("windows", label, NOT_APPLICABLE, "No performed step has a time window in "
                                 f"{self.version}.", self.url + "#steps")
        problems: list[str] = []
        notes: list[str] = []
        for s in windowed:
            if not s.outside_window or s.window is None or s.execution is None:
                continue
            dev = s.execution.window_deviation
            if dev is None:
                problems.append(f"{s.window.message()} No deviation was recorded for it.")
            elif dev.status == "closed" or dev.impact == "negligible":
                notes.append(f"{s.window.message()} Deviation {dev.reference} "
                             f"{'closed' if dev.status == 'closed' else 'assessed as of negligible impact'}.")
            else:
                problems.append(f"{s.window.message()} Deviation {dev.reference} is open and not assessed as of "
                                "negligible impact.")
        inside = len(windowed) - sum(1 for s in windowed if s.outside_window)
        return _line("windows", label, problems,
                     f"{inside} of {len(windowed)} steps with a time window performed inside it"
                     + (f"; {len(notes)} outside, each with its deviation closed or of negligible impact."
                        if notes else "."), self.url + "#steps", notes=notes)

    # (c) P11-10i
    def people(self) -> ChecklistLine:
        checks: list[tuple[Any, User, dt.datetime, bool]] = []
        for e in self.executions:
            if e.performed_by is not None and e.performed_at is not None:
                checks.append((e, e.performed_by, e.performed_at, False))
            if e.verified_by is not None and e.verified_at is not None:
                checks.append((e, e.verified_by, e.verified_at, True))
        gate = BatchedGate(version=self.version, site=self.site, rows=self.rows.gate)
        problems = []
        for e, person, at, verifying in checks:
            for reason in gate.reasons(person=person, step_id=e.step_id, at=at, verifying=verifying):
                problems.append(f"Step {e.step_id} ({'verified' if verifying else 'performed'} "
                                f"{site_time(at, self.site)}): {reason}")
        return _line("people", "Every operator and verifier qualified at the time of their step", problems,
                     f"{len(checks)} performances and verifications checked: each person held the role, the step's "
                     "qualification and the version training at that moment.", self.url + "#steps")

    # (d)
    def units(self) -> ChecklistLine:
        used = [e for e in self.executions if e.equipment_id is not None and e.performed_at is not None]
        units = {e.equipment_id: e.equipment for e in used}
        if not used:
            return ChecklistLine("units", "Manufacturing units valid at the time", NOT_APPLICABLE,
                                 "No step used a manufacturing unit.", self.url + "#steps")
        history = self.rows.unit_history
        problems = []
        for e in used:
            unit = units[e.equipment_id]
            assert isinstance(unit, ManufacturingUnit) and e.performed_at is not None
            state = history.state_at(unit, e.performed_at)
            today = site_today(self.site, e.performed_at)
            if unit.site_id != self.site.pk:
                problems.append(f"Step {e.step_id}: {unit} belongs to another site.")
            if state["status"] != UnitStatus.QUALIFIED:
                problems.append(f"Step {e.step_id}: {unit} was {state['status']} at the time, not in service.")
            for what in ("calibration_due", "maintenance_due"):
                due = state[what]
                if due is not None and due < today:
                    problems.append(f"Step {e.step_id}: {unit} was overdue at the time ({what.replace('_', ' ')} "
                                    f"{due.isoformat()}, step on {today.isoformat()}).")
        serials = ", ".join(sorted(str(u) for u in units.values()))
        return _line("units", "Manufacturing units valid at the time", problems,
                     f"{serials}: at {self.site.code}, qualified and within calibration and maintenance at each of "
                     f"the {len(used)} steps that used a unit (status and due dates replayed from the audit trail).",
                     reverse("network:site", args=[self.site.code]))

    # (e) ATMP-TRACE
    def materials(self) -> ChecklistLine:
        problems = []
        count = 0
        for s in self.page.steps:
            for m in s.materials:
                count += 1
                for why in lot_problems(m.lot, material_code=m.material_code, site=self.site, at=m.recorded_at):
                    problems.append(f"Step {s.spec['id']}: {why}")
                if m.lot.decided_at is not None and m.lot.decided_at > m.recorded_at:
                    problems.append(f"Step {s.spec['id']}: {m.lot} was released only after it was used.")
        if not count:
            return ChecklistLine("materials", "Materials released and unexpired when used", NOT_APPLICABLE,
                                 "No material lot was used.", self.url + "#steps")
        return _line("materials", "Materials released and unexpired when used", problems,
                     f"{count} material uses: each lot was released, unexpired and at {self.site.code} when used.",
                     reverse("manufacturing:lots"))

    # (f) ATMP-REL, ATMP-OOS
    def results_line(self) -> ChecklistLine:
        problems: list[str] = []
        pending: list[str] = []
        notes: list[str] = []
        for q in self.page.qc:
            a = q.attribute
            cur = q.current
            critical = bool(a.get("release_critical"))
            after = bool(a.get("result_after_release"))
            if cur is None:
                state = "pending_after_release" if after else "missing"
            else:
                state = "pass" if cur.conforms else "oos"
            self.results.append(ResultLine(a["id"], a.get("name", a["id"]), acceptance_text(a), critical, after,
                                           cur.display_value if cur is not None else "", state, len(q.results) > 1))
            name = a.get("name", a["id"])
            if not critical:
                if state == "oos":
                    notes.append(f"{name} = {cur.display_value if cur else ''} is out of specification "
                                 "(not release-critical).")
                continue
            if state == "oos":
                assert cur is not None
                problems.append(f"{name} = {cur.display_value} is out of specification ({acceptance_text(a)}).")
            elif state == "missing":
                problems.append(f"{name} has no result, and the master file wants it before release.")
            elif state == "pending_after_release":
                pending.append(f"{name} ({a.get('method', '')}) pending after release")
        critical_count = sum(1 for r in self.results if r.release_critical)
        return _line(RESULTS_LINE, "Release-critical attributes in specification", problems,
                     f"All {critical_count} release-critical attributes have a result in specification.",
                     self.url + "#qc", notes=notes, pending=pending)

    # (g) ATMP-REL
    def deviations(self) -> ChecklistLine:
        problems: list[str] = []
        notes: list[str] = []
        for d in self.page.deviations:
            if d.status == "closed":
                notes.append(f"{d.reference} closed: {d.title}")
            elif d.impact == "negligible":
                notes.append(f"{d.reference} open, assessed by QA as of negligible impact: {d.title}")
            else:
                problems.append(f"{d.reference} is open and not assessed as of negligible impact: {d.title}")
        if not self.page.deviations:
            return ChecklistLine("deviations", "Deviations closed or of negligible impact", PASS,
                                 "No deviation is recorded for the batch.", self.url + "#deviations")
        return _line("deviations", "Deviations closed or of negligible impact", problems,
                     f"{len(self.page.deviations)} deviation(s), each closed or assessed by QA as of negligible "
                     "impact.", self.url + "#deviations", notes=notes)

    # (h) ATMP-TRACE, ISBT-COI
    def custody(self) -> ChecklistLine:
        order, collection = self.batch.order, self.batch.collection
        problems: list[str] = []
        notes: list[str] = []
        if not order.coi:
            problems.append("The therapy order has no chain-of-identity identifier.")
        if not collection.din:
            problems.append("The collection has no DIN.")
        completed = {h.kind for h in self.page.handoffs if h.outcome == "completed"}
        for kind in (HandoffKind.RECEIPT_AT_SITE, HandoffKind.MANUFACTURE_START):
            if kind not in completed:
                problems.append(f"No completed hand-off '{kind.label}'.")
        for h in self.page.handoffs:
            if h.outcome == "blocked":
                later = any(o.kind == h.kind and o.outcome == "completed" and o.occurred_at >= h.occurred_at
                            for o in self.page.handoffs)
                text = (f"{h.get_kind_display()} blocked {site_time(h.occurred_at, self.site)}: presented "
                        f"{h.presented_identifier!r}, expected {h.expected_identifier!r}")
                (notes if later else problems).append(text + (" — later completed" if later else
                                                              " — never completed"))
        return _line("custody", "Chain of identity unbroken and custody complete up to release", problems,
                     f"COI {order.coi}, DIN {collection.din}: received at the site and started with matching scans.",
                     reverse("custody:order", args=[order.pk]), notes=notes)

    # (i) A11-ALARM
    def alarms(self) -> ChecklistLine:
        problems = ([f"{self.page.alarms_open} device alarm(s) not acknowledged."] if self.page.alarms_open else [])
        return _line("alarms", "No unacknowledged alarm", problems, "Every device alarm is acknowledged.",
                     reverse("manufacturing:batch_device", args=[self.batch.reference]))

    # (j) A11-12
    def audit_trail(self) -> ChecklistLine:
        lasts = self.rows.last_events[self.batch.pk]
        chain = self.site.code
        evidence = reverse("trail:reviews")
        if not lasts:
            return ChecklistLine("audit_trail", "Audit trail of the batch reviewed (A11-12)", FAIL,
                                 "No ledger event of the batch was found.", evidence)
        last = ", ".join(f"{lane}#{seq}" for lane, seq in sorted(lasts.items()))
        # Reviews of a chain follow one another, each reading on from the last on every lane:
        # the first that reaches the batch's last event on each lane is the one that covers it.
        review = self.rows.trail_review[self.batch.pk]
        if review is None:
            return ChecklistLine("audit_trail", "Audit trail of the batch reviewed (A11-12)", FAIL,
                                 f"The batch's last event{'s are' if len(lasts) > 1 else ' is'} {last}; no signed "
                                 f"audit-trail review of {chain} reaches {'them' if len(lasts) > 1 else 'it'} yet.",
                                 evidence)
        evidence = reverse("trail:review", args=[review.pk])
        sig = self.rows.signature("ledger.AuditReview", review.pk)
        if sig is None or sig.record_hash != content_hash(review.signed_content()):
            return ChecklistLine("audit_trail", "Audit trail of the batch reviewed (A11-12)", FAIL,
                                 f"The review {review} has no valid signature.", evidence)
        return ChecklistLine("audit_trail", "Audit trail of the batch reviewed (A11-12)", PASS,
                             f"{review} (signed by {sig.signer_printed_name}, reviewed) covers the batch's last "
                             f"event{'s' if len(lasts) > 1 else ''} {last}.", evidence)

    # (k) review by exception
    def exceptions_review(self) -> ChecklistLine:
        evidence = reverse("manufacturing:batch_review", args=[self.batch.reference])
        review = self.rows.exception_review.get(self.batch.pk)
        label = "Review by exception signed"
        if review is None:
            return ChecklistLine("exceptions_review", label, FAIL, "The review by exception is not signed yet.",
                                 evidence)
        current = review_snapshot(self.page.review)
        if review_items_hash(current) != review.items_hash:
            return ChecklistLine("exceptions_review", label, FAIL,
                                 f"The review signed by {review.reviewer.printed_name} no longer matches: the review "
                                 f"items changed since ({len(review.items)} then, {len(current)} now).", evidence)
        sig = self.rows.signature("release.ExceptionReview", review.pk)
        if sig is None or sig.record_hash != content_hash(review.signed_content()):
            return ChecklistLine("exceptions_review", label, FAIL, "The review by exception has no valid signature.",
                                 evidence)
        signed = site_time(review.reviewed_at, self.site, with_utc=True)
        return ChecklistLine("exceptions_review", label, PASS,
                             f"Signed by {review.reviewer.printed_name} ({signed}) "
                             f"over the {len(current)} item(s) listed now.", evidence)

    def changed(self) -> list[ChangedDatum]:
        out = []
        for s in self.page.steps:
            for v in s.values:
                if v.corrected:
                    out.append(ChangedDatum("step value", f"{s.spec['id']}: {v.spec['name']}",
                                            f"{v.entries[0].value} {v.entries[0].unit}".strip(),
                                            f"{v.entries[-1].value} {v.entries[-1].unit}".strip(), len(v.entries) - 1,
                                            v.entries[-1].correction_reason, f"step-{s.spec['id']}"))
        for q in self.page.qc:
            if len(q.results) > 1:
                out.append(ChangedDatum("QC result", str(q.attribute.get("name", q.attribute["id"])),
                                        q.results[0].display_value, q.results[-1].display_value, len(q.results) - 1,
                                        q.results[-1].correction_reason, f"qc-{q.attribute['id']}"))
        return out


def acceptance_text(a: dict[str, Any]) -> str:
    """A specification attribute's acceptance criterion as people write it: ``≥ 70 %``, ``= negative``."""
    acc = a.get("acceptance") or {}
    unit = f" {a['unit']}" if a.get("unit") else ""
    if acc.get("equals") is not None:  # a stored specification lists ``equals: null`` for a range
        return f"= {acc['equals']}"
    parts = []
    if acc.get("min") is not None:
        parts.append(f"≥ {acc['min']}{unit}")
    if acc.get("max") is not None:
        parts.append(f"≤ {acc['max']}{unit}")
    return ", ".join(parts) or "—"


def last_batch_events(batches: Sequence[Batch], pages: dict[int, BatchPage]) -> dict[int, dict[str, int]]:
    """By batch id, the position of the batch's last event on each lane of its site's chain: events
    about the batch, its steps, values, QC results, alarms, abort and custody hand-offs, and their
    signatures. Release records (reviews, certification) and deviations (line g) are not part of it.
    One query for the events of every batch (the last position of each record on each lane), read
    back to the batches the records belong to (a hand-off may belong to two batches of one order)."""
    owners: dict[tuple[str, str], list[int]] = {}
    ids = [b.pk for b in batches]
    alarms = list(Alarm.objects.filter(batch_id__in=ids).values_list("batch_id", "pk"))
    aborts = list(BatchAbort.objects.filter(batch_id__in=ids).values_list("batch_id", "pk"))
    for batch in batches:
        page = pages[batch.pk]
        for label, pks in (
            ("manufacturing.Batch", [batch.pk]),
            ("manufacturing.StepExecution", [s.execution.pk for s in page.steps if s.execution is not None]),
            ("manufacturing.StepValue", [v.pk for s in page.steps for vv in s.values for v in vv.entries]),
            ("manufacturing.QcResult", [r.pk for q in page.qc for r in q.results]),
            ("custody.Handoff", [h.pk for h in page.handoffs]),
        ):
            for pk in pks:
                owners.setdefault((label, str(pk)), []).append(batch.pk)
    for label, pairs in (("manufacturing.Alarm", alarms), ("manufacturing.BatchAbort", aborts)):
        for batch_id, pk in pairs:
            owners.setdefault((label, str(pk)), []).append(batch_id)
    by_label: dict[str, list[str]] = {}
    for label, object_id in owners:
        by_label.setdefault(label, []).append(object_id)
    lanes = {b.pk: set(chains_with_lanes([b.site.code])) for b in batches}
    out: dict[int, dict[str, int]] = {b.pk: {} for b in batches}
    if not by_label:
        return out
    q = Q()
    for label, object_ids in by_label.items():
        q |= Q(object_type=label, object_id__in=object_ids)
    rows = (Event.objects.filter(q, chain__in=set().union(*lanes.values())).order_by()
            .values("chain", "object_type", "object_id").annotate(last=Max("seq"))
            .values_list("chain", "object_type", "object_id", "last"))
    for chain, object_type, object_id, last in rows:
        for batch_id in owners[(object_type, object_id)]:
            if chain in lanes[batch_id]:
                mine = out[batch_id]
                mine[chain] = max(mine.get(chain, 0), int(last))
    return out


def review_items_now(batch: Batch) -> list[ReviewItem]:
    return review_items(batch_page(batch))


# --- the training gate, batched --------------------------------------------------------------------


class GateRows:
    """What :class:`BatchedGate` reads, for many (version, site, people) at once: memberships at the
    sites, qualification grants with their training records, version-training records and the
    sites' lifecycle transitions — one query each, however many batches ask."""

    def __init__(self, cases: Sequence[tuple[Any, Any, list[User]]], *,
                 transitions: dict[int, list[SiteTransition]] | None = None) -> None:
        ids = {p.pk for _, _, people in cases for p in people}
        sites = {site.pk: site for _, site, _ in cases}
        self.memberships: dict[tuple[int, int], list[Membership]] = {}
        for m in Membership.objects.filter(user_id__in=ids, site_id__in=list(sites)):
            self.memberships.setdefault((m.user_id, m.site_id), []).append(m)
        self.grants: dict[tuple[int, str], list[Any]] = {}
        for g in PersonQualification.objects.filter(person_id__in=ids).select_related("qualification", "record"):
            self.grants.setdefault((g.person_id, g.qualification.code), []).append(g)
        self.required = {v.pk: {str(s) for s in required_training_steps(v)} for v, _, _ in cases}
        self.training: dict[tuple[int, int | None], list[Any]] = {}
        trained_on = [pk for pk, steps in self.required.items() if steps]
        if trained_on:
            for r in TrainingRecord.objects.filter(trainee_id__in=ids, kind=TrainingKind.VERSION, passed=True,
                                                   masterfile_version_id__in=trained_on):
                self.training.setdefault((r.trainee_id, r.masterfile_version_id), []).append(r)
        self.transitions = transitions if transitions is not None else site_transitions(sites.values())


class BatchedGate:
    """The person-dependent part of :func:`pocare.training.gate.step_gate` for many (person, step,
    moment) questions at once, from rows loaded once (:class:`GateRows`, given when the caller
    loaded them for many batches).

    The master-file version's own standing (effective at the site, site authorized) does not depend
    on the person and is the checklist's line (a); a batch keeps its version for ever (DESIGN rule 5),
    and the gate refused every step recorded while the version was not effective.
    """

    def __init__(self, *, version: Any, site: Any, people: list[User] | None = None,
                 rows: GateRows | None = None) -> None:
        self.version, self.site = version, site
        self.rows = rows if rows is not None else GateRows([(version, site, people or [])])
        self.required = self.rows.required[version.pk]
        self.transitions = self.rows.transitions[site.pk]
        self.steps = {str(s.get("id")): s for s in _iter_steps(version)}

    def _site_status(self, at: dt.datetime) -> str:
        before = [t for t in self.transitions if t.at <= at]
        if before:
            return str(before[-1].to_status)
        return str(self.transitions[0].from_status) if self.transitions else str(self.site.status)

    def reasons(self, *, person: User, step_id: str, at: dt.datetime, verifying: bool = False) -> list[str]:
        """Why ``person`` could not perform (or verify) ``step_id`` at ``at``; empty when they could."""
        name = person.printed_name or person.username
        out = []
        if not person.is_active and (person.deactivated_at is None or person.deactivated_at <= at):
            out.append(f"{name}'s account was deactivated.")
        if person.locked_at is not None and person.locked_at <= at:
            out.append(f"{name}'s account was locked.")
        roles = VERIFY_ROLES if verifying else PERFORM_ROLES
        if not any(m.role in roles and membership_in_force(m, at)
                   for m in self.rows.memberships.get((person.pk, self.site.pk), [])):
            wanted = " or ".join(sorted(str(Role(r).label) for r in roles))
            out.append(f"{name} held no active {wanted} role at {self.site.code}.")
        if self._site_status(at) != SiteStatus.ACTIVE:
            out.append(f"{self.site.code} was not active.")
        step = self.steps.get(step_id)
        if step is None:
            out.append(f"There is no step '{step_id}' in {self.version}.")
            return out
        codes = step.get("qualification") or []
        for code in [codes] if isinstance(codes, str) else [str(c) for c in codes]:
            if not any(grant_valid_at(g, at) for g in self.rows.grants.get((person.pk, code), [])):
                out.append(f"{name} did not hold a valid qualification '{code}' for step '{step_id}'.")
        if step_id in self.required:
            trained = any(r.status == TrainingStatus.COMPLETE and r.completed_at is not None and r.completed_at <= at
                          and step_id in {str(s) for s in r.steps}
                          for r in self.rows.training.get((person.pk, self.version.pk), []))
            if not trained:
                out.append(f"{name} was not trained on step '{step_id}' of {self.version}.")
        return out


def _iter_steps(version: Any) -> list[dict[str, Any]]:
    return list(schema.iter_steps(version.content or {}))


# --- unit history ----------------------------------------------------------------------------------


class _UnitHistory:
    """Each unit's status and due dates at a moment: its current values with the changes recorded
    after that moment undone, from the unit's ledger events (registration, requalification, status
    changes carry the old and new values)."""

    def __init__(self, events: dict[int, list[tuple[dt.datetime, dict[str, Any]]]]) -> None:
        self.events = events

    def state_at(self, unit: Any, at: dt.datetime) -> dict[str, Any]:
        state: dict[str, Any] = {"status": unit.status, "calibration_due": unit.calibration_due,
                                 "maintenance_due": unit.maintenance_due}
        for occurred, old in sorted(self.events.get(unit.pk, []), key=lambda x: x[0], reverse=True):
            if occurred <= at:
                break
            for key in state:
                if key in old:
                    state[key] = _as_date(old[key]) if key.endswith("_due") else old[key]
        return state


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _unit_history(units: list[Any]) -> _UnitHistory:
    events: dict[int, list[tuple[dt.datetime, dict[str, Any]]]] = {}
    rows = Event.objects.filter(object_type="network.ManufacturingUnit",
                                object_id__in=[str(u.pk) for u in units]).values_list("object_id", "occurred_at",
                                                                                      "old_values")

    for object_id, occurred, old in rows:
        events.setdefault(int(object_id), []).append((occurred, json.loads(old or "{}")))
    return _UnitHistory(events)
