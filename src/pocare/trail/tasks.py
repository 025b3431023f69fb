"""The audit-trail export and verification as jobs (docs/jobs.md): the request validates the filters and queues it
(through ``pocare.core.tasks.JOB_ENQUEUE``: the queue is this app's sibling, which it may not import);
the job reads the events the person may see as it runs, records the export as before
(``ledger.exported``) and returns the CSV or JSON file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.core.listing import csv_cell
from pocare.core.tasks import JOB_ENQUEUE, JobFile, Unrecoverable, task
from pocare.ledger.models import Event
from pocare.ledger.verify import VerifyReport, verify_all
from pocare.trail import selectors
from pocare.trail.filters import EventFilter
from pocare.trail.services import EXPORT_COLUMNS, trail_export, trail_verified

#: The most events one export holds (narrow the filter for more).
MAX_EXPORT = 100_000
EXPORT_TASK = "pocare.trail.tasks.trail_export_work"


def export_body(rows: list[dict[str, Any]], event: Event, fmt: str, *, spreadsheet_safe: bool = True) -> bytes:
    """The export's file: JSON with the export's event, or CSV whose cells a spreadsheet shows and never
    runs (a reason typed as "=HYPERLINK(...)" is prefixed; the JSON keeps it exact)."""
    if fmt == "json":
        return json.dumps({"exported_by": event.actor_printed_name, "export_event": event.label, "events": rows},
                          ensure_ascii=False, indent=1).encode("utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} if spreadsheet_safe else row for row in rows)
    return buffer.getvalue().encode("utf-8")


def trail_export_request(*, actor: User, fmt: str, filters: Mapping[str, str]) -> Any:
    """Queue the export of the events ``filters`` match (already validated by the caller) as a job of
    ``actor``'s, in the caller's transaction; the job."""
    label = f"Audit-trail export ({fmt.upper()})" + (f", chain {filters['chain']}" if filters.get("chain") else "")
    return JOB_ENQUEUE.ask_one(task=EXPORT_TASK, kwargs={"actor_id": actor.pk, "fmt": fmt, "filters": dict(filters)},
                               actor=actor, label=label)


@task(max_tries=3, label="Audit-trail export")
def trail_export_work(*, actor_id: int, fmt: str, filters: dict[str, str]) -> JobFile:
    """The export for the person who asked: the events they may see now that match the filters, in
    chain order; the export recorded (``ledger.exported``) as it was in the request."""
    if fmt not in ("csv", "json"):
        raise Unrecoverable(f"format: {fmt!r} is not an export format; use csv or json.")
    actor = User.objects.get(pk=actor_id)
    filterset = EventFilter(filters, queryset=selectors.events_visible(actor))
    if not filterset.is_valid():
        raise Unrecoverable(f"Invalid filter: {filterset.errors.as_text()}")
    events = filterset.qs.order_by("chain", "seq")
    if events.count() > MAX_EXPORT:
        raise Unrecoverable(f"More than {MAX_EXPORT:,} events: narrow the filter.")
    rows, event = trail_export(actor=actor, events=events, fmt=fmt, filters={k: v for k, v in filters.items() if v})
    stamp = event.occurred_at.strftime("%Y%m%dT%H%M%SZ")
    return JobFile(content=export_body(rows, event, fmt), download_name=f"pocare-audit-{stamp}.{fmt}",
                   content_type="application/json" if fmt == "json" else "text/csv; charset=utf-8",
                   summary={"events": len(rows), "format": fmt, "event": event.label})


VERIFY_TASK = "pocare.trail.tasks.trail_verify_work"


def trail_verify_request(*, actor: User) -> Any:
    """Queue a verification of the chains ``actor`` may verify as a job of theirs, in the caller's
    transaction: on a network's trail (millions of events) it takes longer than a request may."""
    return JOB_ENQUEUE.ask_one(task=VERIFY_TASK, kwargs={"actor_id": actor.pk}, actor=actor,
                               label="Audit-trail verification")


@task(max_tries=2, label="Audit-trail verification", result_template="trail/verify_result.html")
def trail_verify_work(*, actor_id: int) -> dict[str, Any]:
    """Recompute every hash of the chains the person may verify *now* and re-check every signature on
    them; the run is recorded (``LedgerEvent.VERIFIED``) with what it found. The result is the report."""
    actor = User.objects.get(pk=actor_id)
    report = verify_all(chains=selectors.visible_chains(actor, Perm.LEDGER_VERIFY))
    event = trail_verified(actor=actor, events=report.events, chains=len(report.chains),
                           broken=[c.broken_event for c in report.chains if not c.ok],
                           invalid_signatures=[p.signature_id for p in report.signature_problems])
    return verify_result(report, event=event.label)


def verify_result(report: VerifyReport, *, event: str = "") -> dict[str, Any]:
    """The report as JSON: what the job keeps as its result and the API returns."""
    return {
        "ok": report.ok, "chains_ok": report.chains_ok, "events": report.events, "event": event,
        "chains": [{"chain": c.chain, "events": c.events, "ok": c.ok, "broken_event": c.broken_event,
                    "broken_event_id": c.broken_event_id, "problem": c.problem} for c in report.chains],
        "signatures_checked": report.signatures_checked,
        "invalid_signatures": [{"id": p.signature_id, "record": p.record, "problem": p.problem}
                               for p in report.signature_problems],
        "records_checked": report.records_checked,
        "record_problems": [{"record": p.record, "event": p.event, "problem": p.problem}
                            for p in report.record_problems],
    }
