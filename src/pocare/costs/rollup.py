"""The cost of many batches at once (COST-BATCH): each batch's amount by category, exactly as its own
cost page computes it, for the cost report of a site and period and for any roll-up.

Two ways, one answer:

- ``records``: read the records of the batches in five queries per chunk of :data:`CHUNK` batches
  (``selectors.records_many``) and price each with ``compute.batch_cost_lines``, the definition
  itself. Any database; what SQLite (the demo) uses.
- ``sql``: on PostgreSQL, one statement prices every line in the database — each line rounded to
  the cent as ``compute`` rounds it, numeric arithmetic throughout, the model's content passed as
  ``jsonb`` — and returns one row per batch with its amount by category. It is the set-based form of
  the same formulas (docs/costs.md, "The formulas"); tests/costs/test_rollup.py checks on PostgreSQL
  that it gives, batch by batch and category by category, the cents of ``compute`` for batches with
  unpriced lines, site rates, revoked roles, skipped and unverified steps, corrections and several
  model versions. ``benchmarks/costs.py`` times both.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from pocare.accounts.models import Membership
from pocare.costs import compute, selectors
from pocare.costs.models import CostModel
from pocare.manufacturing.models import Batch

#: Batches read and priced together by the ``records`` way (bounds the IN lists and the memory).
CHUNK = 400
CATEGORY_KEYS = tuple(key for key, _ in compute.CATEGORIES)
ZERO = Decimal("0.00")


@dataclass
class BatchTotal:
    """One batch's cost: the amount of each category, the lines the model had no price for, and the
    model version that priced it (``None``: no version was in force when the batch started)."""

    pk: int
    reference: str
    site_code: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    decision: str | None  # the QP's: released or rejected; None while there is none
    model_number: int | None
    amounts: dict[str, Decimal] = field(default_factory=dict)
    unpriced: int = 0

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


class Models:
    """The versions in force (approved now or superseded), and which one prices a batch started on a day:
    the newest whose ``effective_from`` is on or before it (``selectors.model_effective``)."""

    def __init__(self) -> None:
        found = list(CostModel.objects.filter(status__in=selectors.IN_FORCE).order_by("number"))
        self.by_pk = {m.pk: m for m in found}
        # The newest number in force on each day a version takes effect, then by bisection.
        self._days: list[dt.date] = []
        self._chosen: list[CostModel] = []
        for model in sorted(found, key=lambda m: (m.effective_from, m.number)):
            best = max([m for m in found if m.effective_from <= model.effective_from], key=lambda m: m.number)
            if self._days and self._days[-1] == model.effective_from:
                self._chosen[-1] = best
            else:
                self._days.append(model.effective_from)
                self._chosen.append(best)

    def for_start(self, started_at: dt.datetime) -> CostModel | None:
        day = started_at.astimezone(dt.UTC).date()
        i = bisect.bisect_right(self._days, day)
        return self._chosen[i - 1] if i else None

    def ranges(self) -> list[tuple[int, dt.datetime, dt.datetime | None]]:
        """(model pk, from, until): the version that prices a batch started in each span of time (UTC days),
        as :meth:`for_start` chooses it."""
        days = self._days
        return [(m.pk, _midnight(day), _midnight(days[i + 1]) if i + 1 < len(days) else None)
                for i, (day, m) in enumerate(zip(days, self._chosen, strict=True))]


def batch_totals(batches: QuerySet[Batch], *, now: dt.datetime | None = None, method: str | None = None
                 ) -> list[BatchTotal]:
    """The cost of each batch of ``batches`` by category, in the order of reference. ``method``:
    ``"sql"`` (PostgreSQL only) or ``"records"``; by default the SQL on PostgreSQL, else the records."""
    method = method or ("sql" if connection.vendor == "postgresql" else "records")
    if method not in ("sql", "records"):
        raise ValueError(f"method: {method!r} is not sql or records.")
    if method == "sql" and connection.vendor != "postgresql":
        raise ValueError("method: sql needs PostgreSQL.")
    now = now or timezone.now()
    if empty_scope(batches):
        return []
    models = Models()
    if method == "sql":
        return _by_sql(batches, models, now)
    return _by_records(batches, models, now)


def empty_scope(batches: QuerySet[Batch]) -> bool:
    """Whether the scope is known empty without a query (``none()``, an ``IN`` of nothing): its SQL cannot
    be written into the statement."""
    try:
        batches.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return True
    return False


def _empty(batch: Any, model: CostModel | None, decision: str | None) -> BatchTotal:
    return BatchTotal(pk=batch.pk, reference=batch.reference, site_code=batch.site.code, status=batch.status,
                      started_at=batch.started_at, ended_at=batch.ended_at, decision=decision,
                      model_number=model.number if model is not None else None,
                      amounts=dict.fromkeys(CATEGORY_KEYS, ZERO))


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _by_records(batches: QuerySet[Batch], models: Models, now: dt.datetime) -> list[BatchTotal]:
    found = list(batches.select_related("site", "unit", "certification").order_by("reference"))
    out = []
    for chunk in _chunks(found, CHUNK):
        chosen = {b.pk: models.for_start(b.started_at) for b in chunk}
        priced = {pk: m for pk, m in chosen.items() if m is not None}
        records = selectors.records_many([b for b in chunk if b.pk in priced], priced, now=now)
        for batch in chunk:
            certification = getattr(batch, "certification", None)
            total = _empty(batch, chosen[batch.pk], certification.decision if certification is not None else None)
            if batch.pk in records:
                sheet = compute.batch_cost_lines(records[batch.pk], priced[batch.pk].content)
                for line in sheet.lines:
                    total.amounts[line.category] += line.amount
                total.unpriced = len(sheet.unpriced)
            out.append(total)
    return out


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _rate_spans(batches: QuerySet[Batch], models: Models, site_codes: dict[int, str]) -> list[tuple[Any, ...]]:
    """(person, site, model pk, from, until, rate): the hourly rate of the person's best-rated role held at the
    site in each span of time in which their roles there do not change (``selectors._role_at``: of the
    roles held, the one the model rates highest; none rated — or none held — is no span: unpriced)."""
    held: dict[tuple[int, int], list[Any]] = {}
    for m in (Membership.objects.filter(site_id__in=batches.order_by().values("site_id"))
              .values("user_id", "site_id", "role", "granted_at", "valid_until", "revoked_at")):
        ends = [t for t in (m["valid_until"], m["revoked_at"]) if t is not None]
        held.setdefault((m["user_id"], m["site_id"]), []).append({**m, "ends_at": min(ends) if ends else None})
    spans = []
    for (user_id, site_id), rows in held.items():
        bounds = sorted({r["granted_at"] for r in rows} | {r["ends_at"] for r in rows if r["ends_at"] is not None})
        for model in models.by_pk.values():
            for i, t0 in enumerate(bounds):
                roles = {r["role"] for r in rows
                         if r["granted_at"] <= t0 and (r["ends_at"] is None or t0 < r["ends_at"])}
                rates = [rate for role in roles
                         if (rate := compute.hourly_rate(model.content, role, site_codes.get(site_id, ""))) is not None]
                if rates:
                    spans.append((user_id, site_id, model.pk, t0, bounds[i + 1] if i + 1 < len(bounds) else None,
                                  max(rates)))
    return spans


def _price_rows(models: Models) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(model pk, material code, price), (model pk, material code, lot number, price) and (model pk, QC
    attribute, price) of every version."""
    materials, lots, tests = [], [], []
    for model in models.by_pk.values():
        materials += [(model.pk, code, Decimal(str(p))) for code, p in (model.content.get("materials") or {}).items()]
        lots += [(model.pk, code, lot, Decimal(str(p)))
                 for code, prices in (model.content.get("material_lots") or {}).items() for lot, p in prices.items()]
        tests += [(model.pk, a, Decimal(str(p))) for a, p in (model.content.get("qc_tests") or {}).items()]
    return materials, lots, tests


def _batch_rate_rows(batches: QuerySet[Batch], models: Models) -> tuple[list[tuple[Any, ...]], dict[int, str]]:
    """Per version × site × device type in scope, the prices of the batch's own lines (compute.batch_rates):
    review amounts already rounded as their lines are, and what is unpriced."""
    combos = set(batches.order_by().values_list("site_id", "site__code", "unit__device_type").distinct())
    rows = []
    for model in models.by_pk.values():
        for site_id, code, device in combos:
            r = compute.batch_rates(model.content, code, device)
            qa = compute.money(r.qa_hours * r.qa_rate) if r.qa_hours is not None and r.qa_rate is not None else None
            qp = compute.money(r.qp_hours * r.qp_rate) if r.qp_hours is not None and r.qp_rate is not None else None
            unpriced = int(r.qa_hours is not None and qa is None) + int(r.qp_hours is not None and qp is None)
            rows.append((model.pk, site_id, device, r.equipment_hourly, r.facility_hourly, r.verification_hours,
                         (qa or Decimal(0)) + (qp or Decimal(0)), unpriced,
                         compute.money(r.per_shipment) if r.per_shipment is not None else None, r.overhead_percent))
    return rows, {site_id: code for site_id, code, _ in combos}


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


# A span of the person's rate at the batch's site for its version, valid at the moment ({at}).
_SPAN = ("{r}.user_id = {who} AND {r}.site_id = b.site_id AND {r}.model_pk = b.model_pk AND {r}.t0 <= {at}"
         " AND ({r}.t1 IS NULL OR {at} < {r}.t1)")

_SQL = f"""
WITH ranges AS (
  SELECT * FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[]) AS r(model_pk, t0, t1)
), spans AS (
  SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::timestamptz[], %s::timestamptz[], %s::numeric[])
    AS s(user_id, site_id, model_pk, t0, t1, rate)
), material_prices AS (
  SELECT * FROM unnest(%s::int[], %s::text[], %s::numeric[]) AS p(model_pk, code, price)
), lot_prices AS (
  SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::numeric[]) AS p(model_pk, code, lot_number, price)
), test_prices AS (
  SELECT * FROM unnest(%s::int[], %s::text[], %s::numeric[]) AS p(model_pk, attribute_id, price)
), rates AS (
  SELECT * FROM unnest(%s::int[], %s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::numeric[],
                       %s::numeric[], %s::int[], %s::numeric[], %s::numeric[])
    AS f(model_pk, site_id, device_type, equipment_hourly, facility_hourly, verification_hours, review,
         review_unpriced, per_shipment, overhead_percent)
), b AS MATERIALIZED (
  SELECT b.id, b.reference, b.status, b.order_id, b.site_id, b.started_at, b.ended_at, u.device_type,
         c.decision, r.model_pk, f.model_pk AS rated, f.equipment_hourly, f.facility_hourly, f.verification_hours,
         f.review, f.review_unpriced, f.per_shipment, f.overhead_percent,
         GREATEST(0, round(extract(epoch FROM (COALESCE(b.ended_at, %s) - b.started_at)) / 3600, 4)) AS unit_hours
    FROM manufacturing_batch b
    JOIN network_manufacturingunit u ON u.id = b.unit_id
    LEFT JOIN ranges r ON b.started_at >= r.t0 AND (r.t1 IS NULL OR b.started_at < r.t1)
    LEFT JOIN rates f ON f.model_pk = r.model_pk AND f.site_id = b.site_id AND f.device_type = u.device_type
    LEFT JOIN release_certification c ON c.batch_id = b.id
   WHERE b.id IN ({{batches}})
), labour AS MATERIALIZED (
  SELECT st.batch_id,
         sum(round(GREATEST(0, round(extract(epoch FROM (st.performed_at - st.started_at)) / 3600, 4)) * sp.rate, 2))
           AS performed,
         count(*) FILTER (WHERE st.status <> 'skipped' AND st.performed_at IS NOT NULL AND sp.rate IS NULL)
           AS performed_unpriced,
         sum(round(b.verification_hours * sv.rate, 2)) FILTER (WHERE st.verified_by_id IS NOT NULL) AS verified,
         count(*) FILTER (WHERE st.verified_by_id IS NOT NULL AND b.verification_hours IS NOT NULL AND sv.rate IS NULL)
           AS verified_unpriced
    FROM manufacturing_stepexecution st
    JOIN b ON b.id = st.batch_id AND b.rated IS NOT NULL
    LEFT JOIN spans sp
      ON st.status <> 'skipped' AND {_SPAN.format(r="sp", who="st.performed_by_id", at="st.performed_at")}
    LEFT JOIN spans sv ON {_SPAN.format(r="sv", who="st.verified_by_id", at="st.verified_at")}
   GROUP BY st.batch_id
), materials AS MATERIALIZED (
  SELECT st.batch_id, sum(round(u.quantity * coalesce(lp.price, p.price), 2)) AS amount,
         count(*) FILTER (WHERE lp.price IS NULL AND p.price IS NULL) AS unpriced
    FROM manufacturing_materialuse u
    JOIN manufacturing_stepexecution st ON st.id = u.step_id
    JOIN b ON b.id = st.batch_id AND b.model_pk IS NOT NULL
    LEFT JOIN material_prices p ON p.model_pk = b.model_pk AND p.code = u.material_code
    -- the lot's number only where the model prices lots (a one-time filter: no lot prices, no join)
    LEFT JOIN manufacturing_materiallot ml ON ml.id = u.lot_id AND EXISTS (SELECT FROM lot_prices)
    LEFT JOIN lot_prices lp
      ON lp.model_pk = b.model_pk AND lp.code = u.material_code AND lp.lot_number = ml.lot_number
   GROUP BY st.batch_id
), qc AS MATERIALIZED (
  SELECT q.batch_id, sum(round(p.price, 2)) AS amount, count(*) FILTER (WHERE p.price IS NULL) AS unpriced
    FROM manufacturing_qcresult q
    JOIN b ON b.id = q.batch_id AND b.model_pk IS NOT NULL
    LEFT JOIN test_prices p ON p.model_pk = b.model_pk AND p.attribute_id = q.attribute_id
   WHERE q.corrects_id IS NULL
   GROUP BY q.batch_id
), shipped AS MATERIALIZED (
  SELECT sh.order_id, count(*) AS shipments FROM custody_shipment sh
   WHERE sh.order_id IN (SELECT order_id FROM b) GROUP BY sh.order_id
), lines AS MATERIALIZED (
  SELECT b.id,
         coalesce(l.performed, 0) + coalesce(l.verified, 0) AS labour,
         coalesce(m.amount, 0) AS materials,
         coalesce(q.amount, 0) AS qc,
         coalesce(round(b.unit_hours * b.equipment_hourly, 2), 0) AS equipment,
         coalesce(round(b.unit_hours * b.facility_hourly, 2), 0) AS facility,
         b.review,
         coalesce(sh.shipments, 0) * coalesce(b.per_shipment, 0) AS logistics,
         b.overhead_percent,
         coalesce(l.performed_unpriced, 0) + coalesce(l.verified_unpriced, 0) + coalesce(m.unpriced, 0)
           + coalesce(q.unpriced, 0) + (b.equipment_hourly IS NULL)::int + (b.facility_hourly IS NULL)::int
           + b.review_unpriced + CASE WHEN b.per_shipment IS NULL THEN coalesce(sh.shipments, 0) ELSE 0 END
           AS unpriced
    FROM b
    LEFT JOIN labour l ON l.batch_id = b.id
    LEFT JOIN materials m ON m.batch_id = b.id
    LEFT JOIN qc q ON q.batch_id = b.id
    LEFT JOIN shipped sh ON sh.order_id = b.order_id
   WHERE b.rated IS NOT NULL
), per_batch AS (
  SELECT b.id, b.reference, b.site_id, b.status, b.started_at, b.ended_at, b.decision, b.model_pk,
         l.labour, l.materials, l.qc, l.equipment, l.facility, l.review, l.logistics,
         round((l.labour + l.materials + l.qc + l.equipment + l.facility + l.review + l.logistics)
               * l.overhead_percent / 100, 2) AS overhead,
         l.unpriced
    FROM b LEFT JOIN lines l ON l.id = b.id
)
{{final}}"""  # noqa: S608 - only this module's constants are formatted in; values are bound parameters


_PER_BATCH = "SELECT * FROM per_batch ORDER BY reference"
_BY_SITE_MONTH = """SELECT site_id, to_char(coalesce(ended_at, started_at) AT TIME ZONE 'UTC', 'YYYY-MM'), count(*),
       sum(labour), sum(materials), sum(qc), sum(equipment), sum(facility), sum(review), sum(logistics),
       sum(overhead), sum(unpriced)
  FROM per_batch GROUP BY 1, 2"""


_CENTS = ", ".join(f"{key}_cents" for key in CATEGORY_KEYS)
# The cost postings (models.BatchCost) of the ended batches in scope, written by the statement itself; a
# posting already there is replaced (costs.postings keeps them current).
_POST = f"""INSERT INTO costs_batchcost (batch_id, site_id, month, {_CENTS}, unpriced, model_id, computed_at, watermark)
SELECT id, site_id, to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM'),
       {", ".join(f"(coalesce({key}, 0) * 100)::bigint" for key in CATEGORY_KEYS)},
       coalesce(unpriced, 0), model_pk, %s, %s
  FROM per_batch WHERE ended_at IS NOT NULL
ON CONFLICT (batch_id) DO UPDATE SET site_id = EXCLUDED.site_id, month = EXCLUDED.month,
       {", ".join(f"{key}_cents = EXCLUDED.{key}_cents" for key in CATEGORY_KEYS)},
       unpriced = EXCLUDED.unpriced, model_id = EXCLUDED.model_id, computed_at = EXCLUDED.computed_at,
       watermark = EXCLUDED.watermark"""  # noqa: S608 - only this module's constants; values are bound


def _execute(batches: QuerySet[Batch], models: Models, now: dt.datetime, final: str, final_params: list[Any]
             ) -> tuple[list[tuple[Any, ...]] | int, dict[int, str]]:
    """The statement with ``final`` over its per-batch amounts; the prices come in as arrays looked up by
    ``compute`` (three small reads first: the people's roles, the sites and device types in scope); the
    database multiplies, rounds and sums. Returns the rows (the count of rows written, for an INSERT) and
    the sites' codes by id."""
    inner, inner_params = batches.order_by().values("pk").query.sql_with_params()
    fixed, site_codes = _batch_rate_rows(batches, models)
    materials, lots, tests = _price_rows(models)
    params = [*_columns(models.ranges(), 3), *_columns(_rate_spans(batches, models, site_codes), 6),
              *_columns(materials, 3), *_columns(lots, 4), *_columns(tests, 3), *_columns(fixed, 10), now,
              *inner_params, *final_params]
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot estimate the arrays' joins; its guess would switch JIT compilation on, which
        # costs seconds on a statement that runs in less.
        cursor.execute("SET LOCAL jit = off")
        # Its aggregates of millions of rows spill to disk within the default 4 MB of memory each.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(_SQL.replace("{batches}", inner).replace("{final}", final), params)
        if final is _POST:
            return cursor.rowcount, site_codes
        return cursor.fetchall(), site_codes


def _run(batches: QuerySet[Batch], models: Models, now: dt.datetime, final: str) -> list[tuple[Any, ...]]:
    """The statement's rows, with the site's code in place of its id."""
    rows, site_codes = _execute(batches, models, now, final, [])
    assert isinstance(rows, list)
    return [(site_codes.get(row[0], ""), *row[1:]) if final is _BY_SITE_MONTH else
            (*row[:2], site_codes.get(row[2], ""), *row[3:]) for row in rows]


def post_by_sql(batches: QuerySet[Batch], *, watermark: int, now: dt.datetime) -> int:
    """Write (or replace) the cost posting of every ended batch of ``batches`` in one statement on PostgreSQL,
    as current to ledger event ``watermark``; returns how many were written. ``costs.postings`` calls it."""
    if connection.vendor != "postgresql":
        raise ValueError("post_by_sql needs PostgreSQL.")
    if empty_scope(batches):
        return 0
    written, _ = _execute(batches, Models(), now, _POST, [now, watermark])
    assert isinstance(written, int)
    return written


def _by_sql(batches: QuerySet[Batch], models: Models, now: dt.datetime) -> list[BatchTotal]:
    number = {pk: m.number for pk, m in models.by_pk.items()}
    out = []
    for row in _run(batches, models, now, _PER_BATCH):
        (pk, reference, site_code, status, started_at, ended_at, decision, model_pk, *amounts, unpriced) = row
        out.append(BatchTotal(
            pk=pk, reference=reference, site_code=site_code, status=status, started_at=started_at,
            ended_at=ended_at, decision=decision, model_number=number.get(model_pk),
            # numeric(…, 2) from the database: cents already (a zero may come as 0, equal to 0.00)
            amounts={key: value if value is not None else ZERO
                     for key, value in zip(CATEGORY_KEYS, amounts, strict=True)},
            unpriced=unpriced or 0))
    return out


@dataclass
class SiteMonth:
    """The cost of a site's batches that ended (or, in progress, started) in a month (UTC), by category."""

    site_code: str
    month: str  # YYYY-MM
    batches: int
    amounts: dict[str, Decimal]
    unpriced: int

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


def site_month_totals(batches: QuerySet[Batch], *, now: dt.datetime | None = None, method: str | None = None
                      ) -> list[SiteMonth]:
    """The roll-up by site and month of the batches' end: on PostgreSQL summed in the same statement (the
    per-batch amounts never leave the database), else summed here from :func:`batch_totals`. ``"postings"``:
    summed from the cost postings (``costs.postings.site_month_postings``: pending batches posted first, or
    refused when too many; batches in progress priced live)."""
    method = method or ("sql" if connection.vendor == "postgresql" else "records")
    now = now or timezone.now()
    if method == "postings":
        # costs.postings builds on this module: imported here, it is no cycle at start-up.
        from pocare.costs import postings

        return postings.site_month_postings(batches, now=now).rows
    if empty_scope(batches):
        return []
    if method != "sql" or connection.vendor != "postgresql":
        return site_months_of(batch_totals(batches, now=now, method=method))
    rows = _run(batches, Models(), now, _BY_SITE_MONTH)
    return sorted((SiteMonth(site_code, month, count, {
        key: value if value is not None else ZERO for key, value in zip(CATEGORY_KEYS, amounts, strict=True)},
        unpriced or 0) for site_code, month, count, *amounts, unpriced in rows),
        key=lambda row: (row.site_code, row.month))


def site_months_of(totals: list[BatchTotal]) -> list[SiteMonth]:
    """Batches' totals summed by site and month of their end (of their start, while in progress)."""
    found: dict[tuple[str, str], SiteMonth] = {}
    for t in totals:
        month = (t.ended_at or t.started_at).astimezone(dt.UTC).strftime("%Y-%m")
        row = found.setdefault((t.site_code, month), SiteMonth(t.site_code, month, 0,
                                                               dict.fromkeys(CATEGORY_KEYS, ZERO), 0))
        row.batches += 1
        row.unpriced += t.unpriced
        for key in CATEGORY_KEYS:
            row.amounts[key] += t.amounts[key]
    return [found[key] for key in sorted(found)]
