"""Cost postings per batch (COST-BATCH, issue 18): each ended batch's cost by category in cents, kept current
from the ledger's events, equals the records way cent for cent after each change of a cost input; the refresh
is idempotent; the roll-up from postings equals the roll-up from the records (and, on PostgreSQL, the SQL
statement's); a roll-up never sums stale postings; postings are checked against a recomputation."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from pocare.costs import postings, rollup
from pocare.costs.models import BatchCost, PostingState
from pocare.costs.tasks import postings_refresh_hourly
from pocare.custody import services as custody_services
from pocare.manufacturing import services
from pocare.manufacturing.models import Batch, MaterialUse, QcResult
from tests.costs import helpers as c
from tests.manufacturing import helpers as h
from tests.release.helpers import enter_results, finish_steps, good_result, review_trail
from tests.web.helpers import correct_a_value

NO_GRACE = dt.timedelta(0)
KEYS = rollup.CATEGORY_KEYS


def _posted_equal_records() -> int:
    """Every ended batch has a posting, and each equals ``batch_totals(method="records")`` cent for cent, its
    unpriced lines, its version, its site and month; returns how many were compared."""
    totals = rollup.batch_totals(Batch.objects.filter(ended_at__isnull=False), method="records")
    posted = {p.batch_id: p for p in BatchCost.objects.select_related("model", "site")}
    assert set(posted) == {t.pk for t in totals}
    for t in totals:
        p = posted[t.pk]
        assert {k: getattr(p, f"{k}_cents") for k in KEYS} == {k: int(t.amounts[k] * 100) for k in KEYS}, t.reference
        assert (p.unpriced, p.model.number if p.model else None, p.site.code) == (
            t.unpriced,
            t.model_number,
            t.site_code,
        )
        assert p.month == (t.ended_at or t.started_at).astimezone(dt.UTC).strftime("%Y-%m")
    return len(totals)


def _rolled(found: list[rollup.SiteMonth]) -> list[tuple[object, ...]]:
    return [(g.site_code, g.month, g.batches, g.amounts, g.unpriced) for g in found]


def _world() -> tuple[Batch, Batch, str]:
    """A completed batch at Madrid with one QC result still to come, a completed one at Lisbon, one in progress
    at Madrid; a version pricing every material and test. Returns (Madrid's, the one in progress, the attribute
    whose result is to come)."""
    mad = finish_steps(h.started_batch("MAD"))
    later = services.specification(mad)[0]["id"]
    enter_results(mad, skip={later})
    review_trail(mad)
    lis = finish_steps(h.started_batch("LIS"))
    enter_results(lis)
    running = h.started_batch("MAD")
    h.do_step(running)
    codes = sorted(set(MaterialUse.objects.values_list("material_code", flat=True)))
    attributes = sorted({a["id"] for a in services.specification(mad)})
    c.approved(
        c.content(
            materials={k: f"{11 + i}.4567" for i, k in enumerate(codes)}, qc_tests=dict.fromkeys(attributes, "99.995")
        ),
        effective_from=(mad.started_at - dt.timedelta(days=30)).astimezone(dt.UTC).date().isoformat(),
    )
    return mad, running, later


@pytest.mark.django_db
def test_postings_equal_the_records_after_each_change_of_a_cost_input(people):
    """COST-BATCH: the refresh posts each ended batch (not the one in progress) with the cents of its records;
    after a step value's correction, a new QC result, a shipment and a new approved version, the batch concerned
    is pending (its ledger event is after its posting) and the refresh posts it again, equal to its records; run
    again with nothing new, the refresh posts nothing."""
    mad, running, later = _world()
    first = postings.postings_refresh(grace=NO_GRACE)
    assert first.posted == 2 and not BatchCost.objects.filter(batch=running).exists()
    assert _posted_equal_records() == 2
    assert postings.postings_refresh(grace=NO_GRACE).posted == 0, "idempotent: nothing new, nothing posted"
    assert postings_refresh_hourly(slot="")["posted"] == 0, "the hourly job is the same refresh"
    assert PostingState.objects.get().watermark == first.watermark

    correct_a_value(mad, "apheresis-count", reason="Transcription error: the counter's printout says otherwise")
    assert postings.pending_batches().stale == [mad.pk]
    assert postings.postings_refresh(grace=NO_GRACE).posted == 1
    _posted_equal_records()

    qc_before = BatchCost.objects.get(batch=mad).qc_cents
    attribute = next(a for a in services.specification(mad) if a["id"] == later)
    qc = h.user("qc.mad")
    services.qc_result_record(
        actor=qc, batch=mad, attribute_id=later, value=good_result(attribute), credentials=h.creds(qc)
    )
    assert postings.postings_refresh(grace=NO_GRACE).posted == 1
    assert BatchCost.objects.get(batch=mad).qc_cents == qc_before + 10000  # 99.995 → 100.00 €
    _posted_equal_records()

    logistics_before = BatchCost.objects.get(batch=mad).logistics_cents
    custody_services.shipment_dispatch(
        actor=h.user("operator.mad"), order=mad.order, leg="fresh_product", logger_id="TL-0042", reason="Courier left"
    )
    assert postings.postings_refresh(grace=NO_GRACE).posted == 1
    assert BatchCost.objects.get(batch=mad).logistics_cents == logistics_before + 65000
    _posted_equal_records()

    codes = sorted(set(MaterialUse.objects.values_list("material_code", flat=True)))
    newer = c.approved(
        c.content(materials=dict.fromkeys(codes, 250), qc_tests={}),
        # the first day of the first batch (the test clock moves forward through the batches' steps)
        effective_from=mad.started_at.astimezone(dt.UTC).date().isoformat(),
    )
    assert postings.postings_refresh(grace=NO_GRACE).posted == 2
    assert set(BatchCost.objects.values_list("model_id", flat=True)) == {newer.pk}
    assert _posted_equal_records() == 2
    assert postings.postings_refresh(grace=NO_GRACE).posted == 0
    assert postings.postings_verify().differences == []


@pytest.mark.django_db
def test_the_roll_up_from_postings_equals_the_roll_up_from_the_records(people):
    """COST-BATCH: the roll-up by site and month summed from the postings (the batch in progress priced live)
    equals the records way's and, on PostgreSQL, the SQL statement's; the batches pending are posted in the
    call when few, and a roll-up with more pending than it posts itself refuses rather than sum stale figures."""
    mad, _running, _ = _world()
    now = timezone.now()
    expected = _rolled(rollup.site_month_totals(Batch.objects.all(), now=now, method="records"))
    found = postings.site_month_postings(Batch.objects.all(), now=now)
    assert found.posted_now == 2 and found.in_progress == 1
    assert _rolled(found.rows) == expected
    if connection.vendor == "postgresql":
        assert _rolled(rollup.site_month_totals(Batch.objects.all(), now=now, method="sql")) == expected
    assert _rolled(rollup.site_month_totals(Batch.objects.all(), now=now, method="postings")) == expected
    assert _rolled(rollup.site_month_totals(Batch.objects.filter(pk=mad.pk), now=now, method="postings")) == _rolled(
        rollup.site_month_totals(Batch.objects.filter(pk=mad.pk), now=now, method="records")
    )
    assert rollup.site_month_totals(Batch.objects.none(), method="postings") == []

    postings.postings_refresh(grace=NO_GRACE)
    custody_services.shipment_dispatch(
        actor=h.user("operator.mad"), order=mad.order, leg="fresh_product", logger_id="TL-0042", reason="Courier left"
    )
    with pytest.raises(postings.PostingsPending, match="waiting to be posted: 1 "):
        postings.site_month_postings(Batch.objects.all(), now=now, post_limit=0)
    again = postings.site_month_postings(Batch.objects.all(), now=now)
    assert again.posted_now == 1
    assert _rolled(again.rows) == _rolled(rollup.site_month_totals(Batch.objects.all(), now=now, method="records"))


@pytest.mark.django_db
def test_verify_postings_finds_a_posting_that_is_not_its_records(people):
    """COST-BATCH: `pocare costs verify-postings` recomputes postings from the records: all agree after the
    refresh; a posting changed behind the refresh's back is named and the command fails; `--sample` refuses
    nonsense."""
    _world()
    out = StringIO()
    call_command("costs", "refresh", stdout=out)
    # Missing postings are posted whatever the age of the batch's events (the grace only holds the watermark).
    assert "2 batches posted" in out.getvalue()
    # Its watermark stops ten minutes back (the grace): the batches' events are all newer, so they are still
    # pending; a refresh without the grace (nothing else writes in this test) takes the watermark past them.
    postings.postings_refresh(grace=NO_GRACE)
    out = StringIO()
    call_command("costs", "verify-postings", "--sample", "5", stdout=out)
    assert "2 checked, 0 differ" in out.getvalue()
    tampered = BatchCost.objects.order_by("batch_id").first()
    assert tampered is not None
    BatchCost.objects.filter(pk=tampered.pk).update(materials_cents=tampered.materials_cents + 1)
    out = StringIO()
    with pytest.raises(CommandError, match="differ"):
        call_command("costs", "verify-postings", stdout=out)
    assert "materials_cents" in out.getvalue() and "1 differ" in out.getvalue()
    for nonsense in ("0", "-3", "1" * 400, "x\x00", "2.5"):
        with pytest.raises(CommandError, match="--sample"):
            call_command("costs", "verify-postings", "--sample", nonsense)


@pytest.mark.django_db
def test_a_qc_result_written_around_the_ledger_is_found_by_verification(people):
    """COST-BATCH: a record changed without its ledger event (no service writes one so) does not mark the batch;
    verification finds the posting differs from the records, which is what it is for."""
    mad, _running, later = _world()
    postings.postings_refresh(grace=NO_GRACE)
    QcResult.objects.create(
        attribute_id=later,
        value_number=1,
        value_text="",
        unit="",
        conforms=True,
        method="x",
        tested_at=timezone.now(),
        entered_at=timezone.now(),
        correction_reason="",
        batch=mad,
        entered_by=h.user("qc.mad"),
    )
    assert postings.postings_refresh(grace=NO_GRACE).posted == 0
    (difference,) = postings.postings_verify().differences
    assert difference.batch == mad.pk and not difference.pending
