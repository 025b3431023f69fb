"""The cost of a batch from its records (COST-BATCH): recomputed by hand here from the rows themselves,
every line naming the record it comes from; read in a fixed number of queries; shown only to those who
read costs at the batch's site."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pocare.costs import selectors, services
from pocare.custody.models import Shipment
from pocare.manufacturing.models import MaterialUse, QcResult, StepExecution
from tests.costs import helpers as c
from tests.manufacturing import helpers as h
from tests.release.helpers import completed_batch

CENT, HOURS = Decimal("0.01"), Decimal("0.0001")
#: The role each persona holds at its site (tests/personas): their rate at Madrid in helpers.CONTENT.
RATE_AT_MAD = {"operator": Decimal(47), "qc": Decimal(58), "manager": Decimal(71)}


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _hours(start, end) -> Decimal:  # type: ignore[no-untyped-def]
    return (Decimal(str((end - start).total_seconds())) / 3600).quantize(HOURS, ROUND_HALF_UP)


@pytest.mark.django_db
def test_the_cost_of_a_batch_is_recomputed_by_hand_from_its_records_line_by_line(people):
    """COST-BATCH ATMP-TRACE: a completed batch at Madrid priced with the approved model equals, category by
    category, what the rows give by plain arithmetic — labour from each step's start and performance times and
    the performer's role (the site's own operator rate), plus 12 minutes per verification; materials from each
    use's quantity × its price; QC from each result entered (not corrections); equipment and cleanroom from the
    unit's occupation; the order's shipments; the review hours; 15 % overhead. Every line names a record that
    exists and drills down to it."""
    batch = completed_batch("MAD")
    codes = sorted(set(MaterialUse.objects.filter(step__batch=batch).values_list("material_code", flat=True)))
    prices = {code: Decimal(10 + 7 * i) + Decimal("0.25") for i, code in enumerate(codes)}
    attributes = sorted(set(QcResult.objects.filter(batch=batch).values_list("attribute_id", flat=True)))
    tests = {a: Decimal(100 + 10 * i) for i, a in enumerate(attributes)}
    model = c.approved(c.content(materials={k: str(v) for k, v in prices.items()},
                                 qc_tests={k: str(v) for k, v in tests.items()}))

    cost = selectors.batch_cost(batch)
    assert cost is not None and cost.model == model and not cost.in_progress

    labour = Decimal(0)
    for step in StepExecution.objects.filter(batch=batch).select_related("performed_by", "verified_by"):
        if step.status != "skipped" and step.performed_at is not None:
            rate = RATE_AT_MAD[step.performed_by.username.split(".")[0]]
            labour += _money(_hours(step.started_at, step.performed_at) * rate)
        if step.verified_by is not None:
            labour += _money(Decimal("0.2") * RATE_AT_MAD[step.verified_by.username.split(".")[0]])
    materials = sum((_money(u.quantity * prices[u.material_code])
                     for u in MaterialUse.objects.filter(step__batch=batch)), Decimal(0))
    qc = sum((tests[r.attribute_id] for r in QcResult.objects.filter(batch=batch, corrects__isnull=True)), Decimal(0))
    batch.refresh_from_db()
    occupied = _hours(batch.started_at, batch.ended_at)
    assert occupied > 24, "the batch ran its process days on the unit"
    equipment = _money(occupied * Decimal("18.7"))  # the Prodigy's rate
    facility = _money(occupied * Decimal("44.25"))  # Madrid's cleanroom rate
    review = _money(2 * Decimal(80)) + _money(Decimal("1.5") * 120)
    logistics = 650 * Shipment.objects.filter(order=batch.order).count()
    assert logistics == 650  # the apheresis to the site; the product has not left yet
    subtotal = labour + materials + qc + equipment + facility + review + logistics
    overhead = _money(subtotal * Decimal("0.15"))

    got = {key: subtotal_ for key, _, subtotal_, _ in cost.sheet.subtotals()}
    assert got == {"labour": labour, "materials": materials, "qc": qc, "equipment": equipment, "facility": facility,
                   "review": review, "logistics": logistics, "overhead": overhead}
    assert cost.sheet.total == subtotal + overhead
    assert labour > 0 and materials > 0 and qc > 0 and not cost.sheet.unpriced

    for line in cost.sheet.lines:  # each line drills down to its record and recomputes
        record = apps.get_model(line.source.label).objects.get(pk=line.source.pk)
        assert line.amount == _money(line.quantity * line.unit_price) or line.category == "overhead"
        if line.source.label == "manufacturing.MaterialUse":
            assert (record.quantity, line.unit_price) == (line.quantity, prices[record.material_code])
        if line.source.label == "manufacturing.StepExecution":
            assert record.batch_id == batch.pk

    page = _client("qa").get(reverse("costs:batch", args=[batch.reference]))
    html = page.content.decode()
    assert page.status_code == 200 and f"{cost.sheet.total:.2f}" in html
    some_use = MaterialUse.objects.filter(step__batch=batch).first()
    assert reverse("supply:lot", args=[some_use.lot_id]) in html
    assert reverse("manufacturing:qc_result", args=[batch.reference, attributes[0]]) in html
    assert reverse("custody:order", args=[batch.order_id]) + "#shipments" in html


@pytest.mark.django_db
def test_a_lot_with_its_own_price_is_priced_at_it_and_the_other_lots_at_their_materials(people):
    """COST-BATCH: the model prices a material lot at its own price (``material_lots``: its invoice price)
    where it names the lot, and every other use at its material's price; a lot priced only by its own price
    prices a material the model otherwise leaves unpriced; the line says which price it took."""
    batch = completed_batch("MAD")
    uses = list(MaterialUse.objects.filter(step__batch=batch).select_related("lot").order_by("pk"))
    codes = sorted({u.material_code for u in uses})
    assert len(codes) >= 2
    own, unpriced_code = uses[0], next(u for u in uses if u.material_code == codes[-1] != uses[0].material_code)
    prices = dict.fromkeys(codes[:-1], "20")  # the last material has no price of its own ...
    lots = {own.material_code: {own.lot.lot_number: "123.4567"},
            unpriced_code.material_code: {unpriced_code.lot.lot_number: "8.5"}}  # ... but its lot has
    c.approved(c.content(materials=prices, material_lots=lots))

    cost = selectors.batch_cost(batch)
    assert cost is not None
    by_use = {line.source.pk: line for line in cost.sheet.lines if line.source.label == "manufacturing.MaterialUse"}
    assert set(by_use) == {u.pk for u in uses}
    for use in uses:
        line = by_use[use.pk]
        lot_price = lots.get(use.material_code, {}).get(use.lot.lot_number)
        expected = Decimal(lot_price) if lot_price is not None else Decimal(prices[use.material_code])
        assert line.priced and line.unit_price == expected, line.description
        assert line.amount == _money(use.quantity * expected)
        assert ("(the lot's price)" in line.description) == (lot_price is not None)
    assert not [line for line in cost.sheet.unpriced if line.category == "materials"]
    page = _client("qa").get(reverse("costs:batch", args=[batch.reference]))
    assert page.status_code == 200 and "the lot&#x27;s price" in page.content.decode()


@pytest.mark.django_db
def test_no_model_in_force_prices_nothing_and_a_draft_never_prices(people):
    """COST-BATCH: a batch is priced with the version approved and effective on the day it started; a draft
    or a version effective later prices nothing, and the page says so."""
    batch = h.started_batch("MAD")
    c.approved(c.content(), effective_from="2199-01-01")
    services.cost_model_draft(actor=h.user("qa"), content=c.content(), reason="Not yet approved",
                              effective_from="2020-01-01")
    assert selectors.batch_cost(batch) is None
    page = _client("qa").get(reverse("costs:batch", args=[batch.reference]))
    assert page.status_code == 200 and "No cost model was approved" in page.content.decode()


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


@pytest.mark.django_db
def test_the_cost_of_a_batch_takes_the_same_queries_whatever_its_steps_and_is_seen_only_at_its_site(people):
    """COST-BATCH A11-IAM: reading a batch's cost takes the same few queries after one step or five; the page
    is Control Site QA's, the QP's, the planner's and the inspector's, and its site manager's; another site's
    manager finds no such batch (404); a physician may not read costs (403). The model's page lists the
    versions with their signature."""
    c.approved(c.content(materials={"TS520": 100}))
    batch = h.started_batch("MAD")
    h.do_step(batch)

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert selectors.batch_cost(batch) is not None
        return len(seen)

    first = queries()
    for _ in range(4):
        h.do_step(batch)
    assert StepExecution.objects.filter(batch=batch).count() >= 5
    assert queries() == first <= 7

    url = reverse("costs:batch", args=[batch.reference])
    for username in ("qa", "qp", "planner", "inspector", "manager.mad"):
        assert _client(username).get(url).status_code == 200, username
    assert _client("manager.lis").get(url).status_code == 404
    assert _client("physician.mad").get(url).status_code == 403
    assert _client("operator.mad").get(url).status_code == 403
    listing = _client("inspector").get(reverse("costs:models"))
    html = listing.content.decode()
    assert listing.status_code == 200 and 'id="v1"' in html and "Checked against the budget" in html
    assert "badge-ok" in html and "INVALID" not in html
