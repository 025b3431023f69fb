"""The work queues of the apps below the shell (``pocare.core.worklist``): each queue's query lives
in the owning app's selectors; here each is named, and each item is told in a sentence with a link
to the page where the work is done."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone

from pocare.core.worklist import WorkItem, WorkQueue, register
from pocare.manufacturing import selectors as manufacturing
from pocare.quality import selectors as quality
from pocare.release import selectors as release
from pocare.trail import selectors as trail
from pocare.training import selectors as training


def _step(step: Any) -> WorkItem:
    batch = step.batch
    who = step.performed_by.printed_name if step.performed_by else "someone"
    return WorkItem(f"{batch.reference} step {step.step_id}: recorded by {who}, awaits your verification",
                    reverse("manufacturing:step", args=[batch.reference, step.step_id]),
                    step.performed_at, batch.site.time_zone)


def _batch(label: str, anchor: str, url_name: str = "release:batch") -> Any:
    def describe(batch: Any) -> WorkItem:
        return WorkItem(f"{batch.reference} ({batch.masterfile_version.product.name}, {batch.site.code}): {label}",
                        reverse(url_name, args=[batch.reference]) + anchor, batch.ended_at, batch.site.time_zone)
    return describe


def _review(due: trail.ReviewDue) -> WorkItem:
    events = f"{due.events} event{'s' if due.events != 1 else ''}"
    return WorkItem(f"Audit trail of {due.chain}: {events} not reviewed, no review for a week",
                    reverse("trail:reviews") + f"?chain={due.chain}")


def _deviation(d: Any) -> WorkItem:
    return WorkItem(f"{d.reference} ({d.site.code}): {d.title} — investigation overdue",
                    reverse("quality:deviation", args=[d.reference]), d.due_at, d.site.time_zone, late=True)


def _capa(action: Any) -> WorkItem:
    d = action.deviation
    return WorkItem(f"CAPA of {d.reference} ({d.site.code}), owned by {action.owner.printed_name}: "
                    f"{action.get_kind_display().lower()} not done", reverse("quality:deviation", args=[d.reference])
                    + f"#capa-{action.pk}", action.due_on, late=True)


def _signal(s: Any) -> WorkItem:
    return WorkItem(f"{s.site.code} · {s.product.name} · {s.attribute_id}: {s.summary}",
                    reverse("quality:signals") + f"#signal-{s.pk}", s.raised_at, s.site.time_zone)


def _expiring(grant: Any) -> WorkItem:
    return WorkItem(f"{grant.person.printed_name}: {grant.qualification.name} expires",
                    reverse("training:person", args=[grant.person_id]), grant.valid_until)


def _to_sign(record: Any) -> WorkItem:
    return WorkItem(f"{record.title} ({record.site.code}), trained by {record.trainer.printed_name}: sign it",
                    reverse("training:to_sign"), record.trained_on)


def register_queues() -> None:
    """The queues of the home page, in the order of a working day: what others wait on first."""
    for queue in (
        WorkQueue("steps_to_verify", "Steps awaiting your verification", manufacturing.steps_awaiting_verification,
                  _step, when_label="Recorded"),
        WorkQueue("exception_reviews", "Review by exception to sign", release.exception_reviews_due,
                  _batch("review by exception to sign", "", "manufacturing:batch_review"),
                  lambda: reverse("release:queue"), "Completed"),
        WorkQueue("qc_reviews", "QC results to review (site QC review)", release.qc_reviews_due,
                  _batch("results to review and sign", "#stage1"), lambda: reverse("release:queue"), "Completed"),
        WorkQueue("qp_decisions", "Batches awaiting your decision (QP)", release.decisions_due,
                  _batch("ready for certification", "#stage2"), lambda: reverse("release:queue"), "Completed"),
        WorkQueue("trail_reviews", "Audit-trail reviews due", lambda user: trail.reviews_due(user, timezone.now()),
                  _review, lambda: reverse("trail:reviews")),
        WorkQueue("deviations_overdue", "Overdue deviations",
                  lambda user: quality.deviations_overdue_for(user, timezone.now()), _deviation,
                  lambda: reverse("quality:deviations"), "Due"),
        WorkQueue("capa_overdue", "Overdue CAPA actions",
                  lambda user: quality.capa_overdue_for(user, timezone.now().date()), _capa,
                  lambda: reverse("quality:deviations"), "Due"),
        WorkQueue("signals", "Quality signals to triage", quality.signals_to_triage, _signal,
                  lambda: reverse("quality:signals"), "Raised"),
        WorkQueue("training_to_sign", "Your training records to sign", training.records_awaiting_signature,
                  _to_sign, lambda: reverse("training:to_sign"), "Trained"),
        WorkQueue("training_expiring", "Qualifications expiring within 30 days",
                  lambda user: training.qualifications_expiring(user, timezone.now()), _expiring,
                  lambda: reverse("training:matrix"), "Expires"),
    ):
        register(queue)
