"""Cost postings per batch (issue 18, docs/costs.md "Cost postings"): each ended batch's cost by category, in
cents, kept in ``models.BatchCost`` so that the roll-up of a large network sums rows instead of pricing every
line again — and kept current from the ledger.

- **Writing.** :func:`postings_write` posts many batches at once: on PostgreSQL the roll-up's own statement
  writes them (``rollup.post_by_sql``: ``INSERT … SELECT … ON CONFLICT DO UPDATE``); elsewhere the records way
  (``rollup.batch_totals(method="records")``) and one upsert. Only ended batches are posted: a batch in
  progress is priced "so far", as of now, so its figure changes by the minute; the roll-up prices those live.
- **Keeping current.** Every ledger event after the refresh's watermark (``models.PostingState``) that
  concerns a cost input marks the batch it concerns (:data:`MARKING_EVENTS`, :func:`marked`): a step started,
  recorded (with its material uses), verified, skipped or corrected, a QC result or its correction, the batch
  started, ended or loaded, a shipment or a hand-off of its order, a review or the QP's decision, a role granted
  or revoked to someone who performed or verified one of its steps at its site, and a cost model version
  approved (every batch started on or after its first day). A marked batch whose posting is older than the
  event, or an ended batch with no posting at all (written around the ledger: a bulk load), is *pending*
  (:func:`pending_batches`). The hourly job (``costs.tasks.postings_refresh``) posts the pending ones.
- **Reading.** :func:`site_month_postings` sums the postings by site and month, posting first the pending
  batches in scope when they are few (:data:`POST_IN_CALL`), refusing (:class:`PostingsPending`) when they are
  not; the batches in progress are priced live and added. It says how current it is (the watermark, what it
  posted, what it priced live).
- **Checking.** :func:`postings_verify` recomputes posted batches from their records (the definition,
  ``compute``) and lists every difference (``pocare costs verify-postings [--sample N]``).

Why a watermark with a grace period: an event's id is taken when it is written, but the transaction that wrote
it may commit after a later id is visible. The watermark a posting is current to is the newest event older
than :data:`GRACE`, so an event of a transaction still open is read again at the next refresh (posting a batch
twice gives the same figures). A transaction open longer than the grace could be missed until the batch's next
event; ``verify-postings`` would find it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from pocare.accounts.events import AccountEvent
from pocare.accounts.models import Membership
from pocare.costs import rollup
from pocare.costs.events import CostsEvent
from pocare.costs.models import BatchCost, CostModel, PostingState
from pocare.custody.events import CustodyEvent
from pocare.ledger.models import Event
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import Batch, QcResult, StepExecution, StepValue
from pocare.release.events import ReleaseEvent
from pocare.release.models import Certification, ExceptionReview, QcReview

#: How old an event must be for the postings to count it as committed (see the module's docstring).
GRACE = dt.timedelta(minutes=10)
#: The pending batches a roll-up posts itself before summing; more, and it refuses (run the refresh).
POST_IN_CALL = 2000
#: Upserts written together by the records way.
WRITE_CHUNK = 500

#: The ledger events that concern a cost input of a batch (docs/costs.md, "The formulas").
MARKING_EVENTS = frozenset(
    {
        ManufacturingEvent.BATCH_STARTED,
        ManufacturingEvent.BATCH_ENDED,
        ManufacturingEvent.HISTORY_LOADED,
        ManufacturingEvent.STEP_STARTED,
        ManufacturingEvent.STEP_RECORDED,
        ManufacturingEvent.STEP_VERIFIED,
        ManufacturingEvent.STEP_SKIPPED,
        ManufacturingEvent.VALUE_CORRECTED,
        ManufacturingEvent.QC_RESULT_RECORDED,
        ManufacturingEvent.QC_RESULT_CORRECTED,
        CustodyEvent.SHIPMENT_CREATED,
        CustodyEvent.HANDOFF_COMPLETED,
        ReleaseEvent.EXCEPTIONS_REVIEWED,
        ReleaseEvent.QC_REVIEWED,
        ReleaseEvent.CERTIFIED,
        ReleaseEvent.REJECTED,
        AccountEvent.ROLE_GRANTED,
        AccountEvent.ROLE_REVOKED,
        CostsEvent.MODEL_APPROVED,
    }
)


def _by_batch_id(model: Any) -> Callable[[list[int]], Iterable[tuple[int, int]]]:
    return lambda ids: model.objects.filter(pk__in=ids).values_list("pk", "batch_id")


def _memberships(ids: list[int]) -> Iterable[tuple[int, int]]:
    """A role's change re-prices the steps its holder performed or verified at its site."""
    for pk, user_id, site_id in Membership.objects.filter(pk__in=ids).values_list("pk", "user_id", "site_id"):
        did = Q(steps__performed_by_id=user_id) | Q(steps__verified_by_id=user_id)
        for batch_id in Batch.objects.filter(did, site_id=site_id).values_list("pk", flat=True).distinct():
            yield pk, batch_id


def _models(ids: list[int]) -> Iterable[tuple[int, int]]:
    """A version approved prices every batch started on or after its first day (UTC) that no newer one does;
    marking all of them is the safe side."""
    for pk, day in CostModel.objects.filter(pk__in=ids).values_list("pk", "effective_from"):
        since = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        for batch_id in Batch.objects.filter(started_at__gte=since).values_list("pk", flat=True):
            yield pk, batch_id


#: From the object an event names (``object_type``, as ``ledger.services.event_record`` writes it) to the
#: batches it concerns: (object pk, batch pk) pairs.
BATCHES_OF: dict[str, Callable[[list[int]], Iterable[tuple[int, int]]]] = {
    "manufacturing.Batch": lambda ids: (
        (pk, pk) for pk in Batch.objects.filter(pk__in=ids).values_list("pk", flat=True)
    ),
    "manufacturing.StepExecution": _by_batch_id(StepExecution),
    "manufacturing.StepValue": lambda ids: StepValue.objects.filter(pk__in=ids).values_list("pk", "step__batch_id"),
    "manufacturing.QcResult": _by_batch_id(QcResult),
    "custody.Shipment": lambda ids: Batch.objects.filter(order__shipments__in=ids).values_list(
        "order__shipments", "pk"
    ),
    "custody.Handoff": lambda ids: Batch.objects.filter(order__handoffs__in=ids).values_list("order__handoffs", "pk"),
    "release.ExceptionReview": _by_batch_id(ExceptionReview),
    "release.QcReview": _by_batch_id(QcReview),
    "release.Certification": _by_batch_id(Certification),
    "accounts.Membership": _memberships,
    "costs.CostModel": _models,
}


class PostingsPending(Exception):
    """More batches in scope wait to be posted than a roll-up posts itself: run the refresh."""

    def __init__(self, pending: int, watermark: int) -> None:
        self.pending, self.watermark = pending, watermark
        super().__init__(
            f"Batches waiting to be posted: {pending:,} (postings current to ledger event "
            f"{watermark}); run `pocare costs refresh` (the hourly job) first, or use the SQL roll-up."
        )


def ledger_watermark(*, grace: dt.timedelta = GRACE, now: dt.datetime | None = None) -> int:
    """The newest ledger event older than ``grace``: every event up to it is taken as committed."""
    cut = (now or timezone.now()) - grace
    found = Event.objects.filter(occurred_at__lte=cut).order_by("-id").values_list("id", flat=True)[:1]
    return found[0] if found else 0


def state_watermark() -> int:
    """How far the refresh has read the ledger (0: it never ran)."""
    found = PostingState.objects.filter(pk=1).values_list("watermark", flat=True)[:1]
    return found[0] if found else 0


def marked(since: int) -> dict[int, int]:
    """Batch pk → the newest event after ``since`` that concerns one of its cost inputs."""
    newest: dict[str, dict[int, int]] = {}
    for event_id, object_type, object_id in Event.objects.filter(
        id__gt=since, event_type__in=MARKING_EVENTS
    ).values_list("id", "object_type", "object_id"):
        if object_type in BATCHES_OF and object_id.isdigit():
            objects = newest.setdefault(object_type, {})
            objects[int(object_id)] = max(event_id, objects.get(int(object_id), 0))
    out: dict[int, int] = {}
    for object_type, objects in newest.items():
        for object_pk, batch_pk in BATCHES_OF[object_type](list(objects)):
            if batch_pk is not None:
                out[batch_pk] = max(out.get(batch_pk, 0), objects[object_pk])
    return out


def _parts(ids: list[int], size: int = 10_000) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


@dataclass
class Pending:
    """The ended batches whose posting is missing (``missing``, a query: written around the ledger, or never
    posted) or older than an event that concerns them (``stale``, their pks)."""

    missing: QuerySet[Batch]
    stale: list[int]

    def count(self) -> int:
        return self.missing.count() + len(self.stale)


def pending_batches(batches: QuerySet[Batch] | None = None, *, since: int | None = None) -> Pending:
    """The pending batches of ``batches`` (all by default), the events read after ``since`` (the refresh's
    watermark by default)."""
    scope = (batches if batches is not None else Batch.objects.all()).filter(ended_at__isnull=False).order_by()
    marks = marked(state_watermark() if since is None else since)
    posted: dict[int, int] = {}
    for part in _parts(list(marks)):
        posted.update(BatchCost.objects.filter(batch_id__in=part).values_list("batch_id", "watermark"))
    stale = sorted(pk for pk, event_id in marks.items() if pk in posted and posted[pk] < event_id)
    if batches is not None and stale:
        stale = [pk for part in _parts(stale) for pk in scope.filter(pk__in=part).values_list("pk", flat=True)]
    return Pending(scope.filter(~Exists(BatchCost.objects.filter(batch_id=OuterRef("pk")))), stale)


def _write_pending(pending: Pending, *, watermark: int | None = None, now: dt.datetime | None = None) -> int:
    written = 0
    if pending.missing.exists():  # else the statement would read the batches only to find none
        written = postings_write(
            Batch.objects.filter(pk__in=pending.missing.values("pk")), watermark=watermark, now=now
        )
    for part in _parts(pending.stale):
        written += postings_write(Batch.objects.filter(pk__in=part), watermark=watermark, now=now)
    return written


def postings_write(batches: QuerySet[Batch], *, watermark: int | None = None, now: dt.datetime | None = None) -> int:
    """Post (or post again) every ended batch of ``batches``, current to ledger event ``watermark`` (by default
    the newest older than the grace, read before the records); returns how many were written."""
    now = now or timezone.now()
    watermark = ledger_watermark(now=now) if watermark is None else watermark
    ended = batches.filter(ended_at__isnull=False)
    if connection.vendor == "postgresql":
        return rollup.post_by_sql(ended, watermark=watermark, now=now)
    totals = rollup.batch_totals(ended, now=now, method="records")
    sites = dict(ended.order_by().values_list("pk", "site_id"))
    model_pk = dict(CostModel.objects.values_list("number", "pk"))
    rows = [
        BatchCost(
            batch_id=t.pk,
            site_id=sites[t.pk],
            month=_month(t.ended_at or t.started_at),
            unpriced=t.unpriced,
            model_id=model_pk.get(t.model_number) if t.model_number else None,
            computed_at=now,
            watermark=watermark,
            **{f"{key}_cents": _cents(t.amounts[key]) for key in rollup.CATEGORY_KEYS},
        )
        for t in totals
    ]
    columns = [f"{key}_cents" for key in rollup.CATEGORY_KEYS]
    with transaction.atomic():
        BatchCost.objects.bulk_create(
            rows,
            batch_size=WRITE_CHUNK,
            update_conflicts=True,
            unique_fields=["batch"],
            update_fields=["site", "month", *columns, "unpriced", "model", "computed_at", "watermark"],
        )
    return len(rows)


def _month(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m")


def _cents(amount: Decimal) -> int:
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents.")
    return int(cents)


@dataclass
class Refresh:
    """What a refresh did: the batches posted, the watermark read to, how long it took."""

    posted: int
    watermark: int
    seconds: float

    def line(self) -> str:
        return (
            f"cost postings: {self.posted:,} batches posted, current to ledger event {self.watermark} "
            f"({self.seconds:.1f} s)"
        )


def postings_refresh(*, grace: dt.timedelta = GRACE, now: dt.datetime | None = None) -> Refresh:
    """Post every pending batch (missing, or marked by an event after the watermark) and move the watermark
    to the newest event older than ``grace``. Idempotent: run again with nothing new, it posts nothing older
    than the grace (and the same figures for what it posts again). One refresh at a time (the state's row is
    locked)."""
    started = timezone.now()
    now = now or started
    with transaction.atomic():
        PostingState.objects.get_or_create(pk=1)
        state = PostingState.objects.select_for_update().get(pk=1)
        target = ledger_watermark(grace=grace, now=now)
        posted = _write_pending(pending_batches(since=state.watermark), watermark=target, now=now)
        state.watermark = max(state.watermark, target)
        state.refreshed_at = now
        state.save(update_fields=["watermark", "refreshed_at"])
    return Refresh(posted=posted, watermark=state.watermark, seconds=(timezone.now() - started).total_seconds())


@dataclass
class PostedRollup:
    """The roll-up by site and month from the postings, and how current it is: the watermark the refresh had
    read to, the batches this call posted first, the batches in progress priced live (as of ``now``)."""

    rows: list[rollup.SiteMonth]
    watermark: int
    posted_now: int
    in_progress: int
    now: dt.datetime


def site_month_postings(
    batches: QuerySet[Batch], *, now: dt.datetime | None = None, post_limit: int = POST_IN_CALL
) -> PostedRollup:
    """The cost of ``batches`` by site and month of their end, summed from the postings. The pending batches in
    scope are posted first when at most ``post_limit``, else :class:`PostingsPending` (never a stale figure);
    the batches in progress are priced live and added (by month of their start, as ``rollup`` does)."""
    now = now or timezone.now()
    watermark = state_watermark()
    if rollup.empty_scope(batches):
        return PostedRollup([], watermark, 0, 0, now)
    pending = pending_batches(batches, since=watermark)
    missing = list(pending.missing.values_list("pk", flat=True)[: post_limit + 1])
    if len(missing) + len(pending.stale) > post_limit:
        raise PostingsPending(pending.missing.count() + len(pending.stale), watermark)
    todo = missing + pending.stale
    posted = postings_write(Batch.objects.filter(pk__in=todo), now=now) if todo else 0
    found: dict[tuple[str, str], rollup.SiteMonth] = {}
    sums = {key: Sum(f"{key}_cents") for key in rollup.CATEGORY_KEYS}
    grouped = (
        BatchCost.objects.filter(batch_id__in=batches.filter(ended_at__isnull=False).order_by().values("pk"))
        .values("site__code", "month")
        .order_by()
        .annotate(n=Count("pk"), lines=Sum("unpriced"), **sums)
    )
    # django-stubs types the rows by the names it sees; the sums by category are named in a loop.
    for row in cast(Iterable[dict[str, Any]], grouped):
        found[(row["site__code"], row["month"])] = rollup.SiteMonth(
            row["site__code"],
            row["month"],
            row["n"],
            {key: (Decimal(row[key]) / 100).quantize(rollup.ZERO) for key in rollup.CATEGORY_KEYS},
            row["lines"] or 0,
        )
    live = batches.filter(ended_at__isnull=True)
    in_progress = 0
    for group in rollup.site_month_totals(
        live, now=now, method="sql" if connection.vendor == "postgresql" else "records"
    ):
        in_progress += group.batches
        same = found.setdefault(
            (group.site_code, group.month),
            rollup.SiteMonth(group.site_code, group.month, 0, dict.fromkeys(rollup.CATEGORY_KEYS, rollup.ZERO), 0),
        )
        same.batches += group.batches
        same.unpriced += group.unpriced
        for key in rollup.CATEGORY_KEYS:
            same.amounts[key] += group.amounts[key]
    return PostedRollup([found[key] for key in sorted(found)], watermark, posted, in_progress, now)


@dataclass
class Difference:
    """A posted batch whose posting is not what its records give now."""

    batch: int
    reference: str
    posted: dict[str, Any]
    recomputed: dict[str, Any]
    pending: bool  # marked by an event since: the refresh will post it again


@dataclass
class Verification:
    checked: int
    differences: list[Difference] = field(default_factory=list)


def _as_posted(total: rollup.BatchTotal, site_id: int, model_pk: int | None) -> dict[str, Any]:
    return {
        "site": site_id,
        "month": _month(total.ended_at or total.started_at),
        "unpriced": total.unpriced,
        "model": model_pk,
        **{f"{key}_cents": _cents(total.amounts[key]) for key in rollup.CATEGORY_KEYS},
    }


def postings_verify(*, sample: int | None = None, chunk: int = 5000) -> Verification:
    """Recompute posted batches from their records (``method="records"``, the definition) and compare, cent for
    cent: all of them, or ``sample`` chosen at random."""
    posted = BatchCost.objects.order_by("?") if sample else BatchCost.objects.order_by("batch_id")
    ids = list(
        posted.values_list("batch_id", flat=True)[:sample] if sample else posted.values_list("batch_id", flat=True)
    )
    pending = set(pending_batches(Batch.objects.all()).stale)
    model_pk = dict(CostModel.objects.values_list("number", "pk"))
    columns = ["site", "month", "unpriced", "model", *(f"{key}_cents" for key in rollup.CATEGORY_KEYS)]
    out = Verification(checked=len(ids))
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        stored = {row["batch"]: row for row in BatchCost.objects.filter(batch_id__in=part).values("batch", *columns)}
        sites = dict(Batch.objects.filter(pk__in=part).values_list("pk", "site_id"))
        for total in rollup.batch_totals(Batch.objects.filter(pk__in=part), method="records"):
            now = _as_posted(total, sites[total.pk], model_pk.get(total.model_number) if total.model_number else None)
            was = {key: stored[total.pk][key] for key in columns}
            if now != was:
                out.differences.append(Difference(total.pk, total.reference, was, now, total.pk in pending))
    return out
