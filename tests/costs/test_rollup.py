"""The cost of many batches at once (COST-BATCH): the roll-up gives, batch by batch and category by
category, the cents of each batch's own cost page — by its records on any database, and by one SQL
statement on PostgreSQL — in a number of queries that does not grow with the batches."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.accounts.models import Membership
from pocare.costs import rollup, selectors
from pocare.manufacturing.models import Batch, MaterialUse, QcResult
from tests.costs import helpers as c
from tests.manufacturing import helpers as h
from tests.release.helpers import completed_batch


def _world() -> list[Batch]:
    """Three batches priced by two versions: a completed one at Madrid (the site's own operator rate), one
    at Lisbon started a year ago (the older version, which prices only some materials and tests: unpriced
    lines — but one lot of a material it does not price has its own price), one in progress at Madrid; the
    newer version prices one of Madrid's lots at its own price; the Madrid operator's role revoked since (it
    still counts)."""
    mad = completed_batch("MAD")
    lis = completed_batch("LIS")
    running = h.started_batch("MAD")
    h.do_step(running)
    h.do_step(running)
    codes = sorted(set(MaterialUse.objects.values_list("material_code", flat=True)))
    attributes = sorted(set(QcResult.objects.values_list("attribute_id", flat=True)))
    year_ago = timezone.now() - dt.timedelta(days=365)
    lis_lot = MaterialUse.objects.filter(step__batch=lis, material_code=codes[1]).select_related("lot").first()
    mad_lot = MaterialUse.objects.filter(step__batch=mad, material_code=codes[0]).select_related("lot").first()
    assert lis_lot is not None and mad_lot is not None
    c.approved(c.content(materials={k: f"{11 + i}.4567" for i, k in enumerate(codes[::2])},
                         material_lots={codes[1]: {lis_lot.lot.lot_number: "3.3333"}},
                         qc_tests=dict.fromkeys(attributes[::2], "99.995")),
               effective_from=(year_ago - dt.timedelta(days=30)).date().isoformat())
    c.approved(c.content(materials={k: 100 + 3 * i for i, k in enumerate(codes)},
                         material_lots={codes[0]: {mad_lot.lot.lot_number: "77.125", "NOT-USED": 1}},
                         qc_tests=dict.fromkeys(attributes, 120)),
               effective_from=mad.started_at.astimezone(dt.UTC).date().isoformat())
    Batch.objects.filter(pk=lis.pk).update(started_at=year_ago, ended_at=year_ago + dt.timedelta(days=9))
    Membership.objects.filter(user=h.user("operator.mad")).update(revoked_at=timezone.now())
    return [mad, lis, running]


def _by_page(batches: list[Batch], now: dt.datetime) -> dict[str, tuple[dict[str, Decimal], int]]:
    """What each batch's own cost page says (selectors.batch_cost, compute's lines), by reference."""
    out = {}
    for batch in batches:
        cost = selectors.batch_cost(Batch.objects.get(pk=batch.pk))
        assert cost is not None
        amounts = {key: Decimal("0.00") for key in rollup.CATEGORY_KEYS}
        for key, _, subtotal, _ in cost.sheet.subtotals():
            amounts[key] = subtotal
        out[batch.reference] = (amounts, len(cost.sheet.unpriced))
    return out


def _totals(method: str, now: dt.datetime) -> dict[str, tuple[dict[str, Decimal], int]]:
    found = rollup.batch_totals(Batch.objects.all(), now=now, method=method)
    return {t.reference: (t.amounts, t.unpriced) for t in found}


@pytest.mark.django_db
def test_the_roll_up_by_records_gives_each_batch_the_cents_of_its_own_page(people):
    """COST-BATCH: three batches, two model versions, unpriced lines, a revoked role, a batch in progress: the
    roll-up by records gives each batch, category by category, what its cost page gives, and names the
    version; its queries do not grow with the batches."""
    batches = _world()
    now = timezone.now()
    totals = rollup.batch_totals(Batch.objects.all(), now=now, method="records")
    assert [t.model_number for t in totals] == [2 if t.reference != batches[1].reference else 1 for t in totals]
    page = _by_page(batches, now)
    by_ref = {t.reference: t for t in totals}
    for reference, (amounts, unpriced) in page.items():
        got = by_ref[reference]
        in_progress = got.status == "in_progress"
        # A batch in progress is priced "so far": the page's clock and the roll-up's differ by moments.
        assert {k: v for k, v in got.amounts.items() if not in_progress or k not in ("equipment", "facility",
                                                                                   "overhead")} == \
            {k: v for k, v in amounts.items() if not in_progress or k not in ("equipment", "facility", "overhead")}
        assert got.unpriced == unpriced
    assert by_ref[batches[1].reference].unpriced > 0, "the older version leaves lines unpriced"
    assert all(t.total > 0 for t in totals)

    with CaptureQueriesContext(connection) as few:
        rollup.batch_totals(Batch.objects.filter(pk=batches[0].pk), now=now, method="records")
    with CaptureQueriesContext(connection) as many:
        rollup.batch_totals(Batch.objects.all(), now=now, method="records")
    assert len(many) == len(few) <= 8


@pytest.mark.django_db
def test_the_roll_up_in_sql_gives_the_cents_of_the_records_on_postgresql(people):
    """COST-BATCH: on PostgreSQL the one statement that prices every line in the database gives, batch by batch
    and category by category, the same cents and the same count of unpriced lines as pricing each batch's
    records with compute — with two versions, site rates, unpriced materials and tests, revoked roles, a batch
    in progress — in one statement after three small reads."""
    if connection.vendor != "postgresql":
        pytest.skip("the SQL roll-up is PostgreSQL's")
    _world()
    now = timezone.now()
    by_records = _totals("records", now)
    with CaptureQueriesContext(connection) as seen:
        by_sql = _totals("sql", now)
    assert by_sql == by_records
    # The versions, the sites × device types, the roles; the statement in a savepoint with JIT off and
    # more memory for its aggregates.
    assert len(seen) <= 8
    grouped = rollup.site_month_totals(Batch.objects.all(), now=now, method="sql")
    assert [(g.site_code, g.month, g.batches, g.amounts, g.unpriced) for g in grouped] == [
        (g.site_code, g.month, g.batches, g.amounts, g.unpriced)
        for g in rollup.site_month_totals(Batch.objects.all(), now=now, method="records")]
    assert sum(g.batches for g in grouped) == 3
    assert len(by_sql) == 3 and any(unpriced for _, unpriced in by_sql.values())


@pytest.mark.django_db
def test_a_batch_started_before_any_model_is_listed_unpriced(people):
    """COST-BATCH: a batch started before any version took effect is in the roll-up with no version and
    nothing priced, never silently at a cost; asking SQL of SQLite, or an unknown way, is refused."""
    batch = h.started_batch("MAD")
    c.approved(c.content(), effective_from="2199-01-01")
    (total,) = rollup.batch_totals(Batch.objects.filter(pk=batch.pk))
    assert total.model_number is None and total.total == 0
    with pytest.raises(ValueError, match="method"):
        rollup.batch_totals(Batch.objects.all(), method="guess")
    if connection.vendor != "postgresql":
        with pytest.raises(ValueError, match="PostgreSQL"):
            rollup.batch_totals(Batch.objects.all(), method="sql")
