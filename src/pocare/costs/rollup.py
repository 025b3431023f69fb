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
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

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
    certified: bool
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

    def as_json(self) -> str:
        return json.dumps([{"pk": m.pk, "number": m.number, "effective_from": m.effective_from.isoformat(),
                            "content": m.content} for m in self.by_pk.values()])


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
    models = Models()
    if method == "sql":
        return _by_sql(batches, models, now)
    return _by_records(batches, models, now)


def _empty(batch: Any, model: CostModel | None, certified: bool) -> BatchTotal:
    return BatchTotal(pk=batch.pk, reference=batch.reference, site_code=batch.site.code, status=batch.status,
                      started_at=batch.started_at, ended_at=batch.ended_at, certified=certified,
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
            total = _empty(batch, chosen[batch.pk], certification is not None)
            if batch.pk in records:
                sheet = compute.batch_cost_lines(records[batch.pk], priced[batch.pk].content)
                for line in sheet.lines:
                    total.amounts[line.category] += line.amount
                total.unpriced = len(sheet.unpriced)
            out.append(total)
    return out


# The rate of a role at the batch's site in the model's content (compute.hourly_rate): the site's own,
# else the general one; NULL when the model has none.
_RATE = ("COALESCE((bm.content->'labour'->'site_hourly_rates'->bm.site_code->>{role})::numeric, "
         "(bm.content->'labour'->'hourly_rates'->>{role})::numeric)")
# A membership of the person at the batch's site valid at the moment ({at}), as selectors._role_at.
_HELD = ("{m}.site_id = bm.site_id AND {m}.granted_at <= {at} AND ({m}.valid_until IS NULL OR {at} < {m}.valid_until)"
         " AND ({m}.revoked_at IS NULL OR {at} < {m}.revoked_at)")

_SQL = f"""
WITH m AS (
  SELECT * FROM jsonb_to_recordset(%s::jsonb) AS m(pk int, number int, effective_from date, content jsonb)
), b AS (
  SELECT b.id, b.reference, b.status, b.order_id, b.site_id, b.started_at, b.ended_at, s.code AS site_code,
         u.device_type, c.id IS NOT NULL AS certified,
         GREATEST(0, round(extract(epoch FROM (COALESCE(b.ended_at, %s) - b.started_at)) / 3600, 4)) AS unit_hours,
         (SELECT mm.pk FROM m mm WHERE mm.effective_from <= (b.started_at AT TIME ZONE 'UTC')::date
           ORDER BY mm.number DESC LIMIT 1) AS model_pk
    FROM manufacturing_batch b
    JOIN network_site s ON s.id = b.site_id
    JOIN network_manufacturingunit u ON u.id = b.unit_id
    LEFT JOIN release_certification c ON c.batch_id = b.id
   WHERE b.id IN ({{batches}})
), bm AS (
  SELECT b.*, m.number AS model_number, m.content FROM b JOIN m ON m.pk = b.model_pk
), performed AS (
  SELECT st.batch_id,
         GREATEST(0, round(extract(epoch FROM (st.performed_at - st.started_at)) / 3600, 4)) AS hours,
         max({_RATE.format(role="ms.role")}) AS rate
    FROM manufacturing_stepexecution st
    JOIN bm ON bm.id = st.batch_id
    LEFT JOIN accounts_membership ms ON ms.user_id = st.performed_by_id AND {_HELD.format(m="ms", at="st.performed_at")}
   WHERE st.status <> 'skipped' AND st.performed_at IS NOT NULL
   GROUP BY st.id, st.batch_id, st.performed_at, st.started_at
), verified AS (
  SELECT st.batch_id, max({_RATE.format(role="mv.role")}) AS rate,
         round((max(bm.content->'labour'->>'verification_minutes'))::numeric / 60, 4) AS hours
    FROM manufacturing_stepexecution st
    JOIN bm ON bm.id = st.batch_id AND bm.content->'labour' ? 'verification_minutes'
    LEFT JOIN accounts_membership mv ON mv.user_id = st.verified_by_id AND {_HELD.format(m="mv", at="st.verified_at")}
   WHERE st.verified_by_id IS NOT NULL
   GROUP BY st.id, st.batch_id
), labour AS (
  SELECT batch_id, sum(round(hours * rate, 2)) AS amount, count(*) FILTER (WHERE rate IS NULL) AS unpriced
    FROM (SELECT batch_id, hours, rate FROM performed UNION ALL SELECT batch_id, hours, rate FROM verified) x
   GROUP BY batch_id
), materials AS (
  SELECT st.batch_id,
         sum(round(u.quantity * (bm.content->'materials'->>u.material_code)::numeric, 2)) AS amount,
         count(*) FILTER (WHERE NOT coalesce(bm.content->'materials' ? u.material_code, false)) AS unpriced
    FROM manufacturing_materialuse u
    JOIN manufacturing_stepexecution st ON st.id = u.step_id
    JOIN bm ON bm.id = st.batch_id
   GROUP BY st.batch_id
), qc AS (
  SELECT r.batch_id, sum(round((bm.content->'qc_tests'->>r.attribute_id)::numeric, 2)) AS amount,
         count(*) FILTER (WHERE NOT coalesce(bm.content->'qc_tests' ? r.attribute_id, false)) AS unpriced
    FROM manufacturing_qcresult r JOIN bm ON bm.id = r.batch_id
   WHERE r.corrects_id IS NULL
   GROUP BY r.batch_id
), shipped AS (
  SELECT bm.id AS batch_id, count(sh.id) AS shipments
    FROM bm JOIN custody_shipment sh ON sh.order_id = bm.order_id
   GROUP BY bm.id
), priced AS (
  SELECT bm.id, bm.model_number,
         coalesce(l.amount, 0) AS labour, coalesce(l.unpriced, 0) AS labour_unpriced,
         coalesce(mt.amount, 0) AS materials, coalesce(mt.unpriced, 0) AS materials_unpriced,
         coalesce(q.amount, 0) AS qc, coalesce(q.unpriced, 0) AS qc_unpriced,
         (bm.content->'equipment'->'hourly'->>bm.device_type)::numeric AS equipment_rate,
         COALESCE((bm.content->'facility'->'site_hourly'->>bm.site_code)::numeric,
                  (bm.content->'facility'->>'hourly')::numeric) AS facility_rate,
         bm.unit_hours,
         (bm.content->'review'->>'qa_hours')::numeric AS qa_hours, {_RATE.format(role="'control_qa'")} AS qa_rate,
         (bm.content->'review'->>'qp_hours')::numeric AS qp_hours, {_RATE.format(role="'qp'")} AS qp_rate,
         coalesce(sh.shipments, 0) AS shipments,
         round((bm.content->'logistics'->>'per_shipment')::numeric, 2) AS per_shipment,
         (bm.content->'overhead'->>'percent')::numeric AS overhead_percent
    FROM bm
    LEFT JOIN labour l ON l.batch_id = bm.id
    LEFT JOIN materials mt ON mt.batch_id = bm.id
    LEFT JOIN qc q ON q.batch_id = bm.id
    LEFT JOIN shipped sh ON sh.batch_id = bm.id
), lines AS (
  SELECT id, model_number, labour, materials, qc,
         coalesce(round(unit_hours * equipment_rate, 2), 0) AS equipment,
         coalesce(round(unit_hours * facility_rate, 2), 0) AS facility,
         coalesce(round(qa_hours * qa_rate, 2), 0) + coalesce(round(qp_hours * qp_rate, 2), 0) AS review,
         coalesce(shipments * per_shipment, 0) AS logistics,
         overhead_percent,
         labour_unpriced + materials_unpriced + qc_unpriced
           + (equipment_rate IS NULL)::int + (facility_rate IS NULL)::int
           + (qa_hours IS NOT NULL AND qa_rate IS NULL)::int + (qp_hours IS NOT NULL AND qp_rate IS NULL)::int
           + CASE WHEN per_shipment IS NULL THEN shipments ELSE 0 END AS unpriced
    FROM priced
)
SELECT b.id, b.reference, b.site_code, b.status, b.started_at, b.ended_at, b.certified, l.model_number,
       l.labour, l.materials, l.qc, l.equipment, l.facility, l.review, l.logistics,
       round((l.labour + l.materials + l.qc + l.equipment + l.facility + l.review + l.logistics)
             * l.overhead_percent / 100, 2) AS overhead,
       l.unpriced
  FROM b LEFT JOIN lines l ON l.id = b.id
 ORDER BY b.reference
"""  # noqa: S608 - only this module's constants are formatted in; values are bound parameters


def _by_sql(batches: QuerySet[Batch], models: Models, now: dt.datetime) -> list[BatchTotal]:
    inner, inner_params = batches.order_by().values("pk").query.sql_with_params()
    # Positional parameters in the order they appear: the models, now, then the batches' own query.
    params = [models.as_json(), now, *inner_params]
    out = []
    with connection.cursor() as cursor:
        cursor.execute(_SQL.replace("{batches}", inner), params)
        for row in cursor.fetchall():
            (pk, reference, site_code, status, started_at, ended_at, certified, model_number, *amounts, unpriced) = row
            out.append(BatchTotal(
                pk=pk, reference=reference, site_code=site_code, status=status, started_at=started_at,
                ended_at=ended_at, certified=certified, model_number=model_number,
                amounts={key: (Decimal(value) if value is not None else ZERO).quantize(compute.CENT)
                         for key, value in zip(CATEGORY_KEYS, amounts, strict=True)},
                unpriced=unpriced or 0))
    return out
