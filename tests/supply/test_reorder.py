"""Reorder points from the booked schedule and from history, and the work queues of supply (SUP-STOCK): a chain
booked by the patients app raises what its manufacturing site needs; a site whose stock does not cover its
booked chains is short and its materials people find it in their work; lots near expiry are listed; a recalled
lot is not counted as usable stock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from pocare.core import worklist
from pocare.masterfile import schema
from pocare.masterfile.selectors import effective_version
from pocare.network.models import Site
from pocare.patients import booking
from pocare.supply import recall, reorder
from tests.manufacturing import helpers as h
from tests.patients.conftest import _patient_keys, patient, referral  # noqa: F401  (fixtures)
from tests.patients.test_booking import network, ready  # noqa: F401  (fixtures)
from tests.supply import helpers as s
from tests.supply.test_step import at_count_step, record_count


def _per_batch(code: str) -> Decimal:
    """The quantity of ``code`` one batch uses, read from the master file in force at MAD."""
    version = effective_version(site=Site.objects.get(code="MAD"), product=h.world().product)
    return sum((Decimal(str(m["quantity"])) for step in schema.iter_steps(version.content)
                for m in step.get("materials", []) if m["code"] == code), Decimal(0))


def _need(code: str, site: str = "MAD") -> reorder.Need:
    return next(n for n in reorder.needs(user=h.user("qa")) if n.site == site and n.material_code == code)


def test_a_booked_chain_is_the_material_its_site_needs_and_a_short_site_is_work_for_its_materials_people(
        people, ready):  # noqa: F811
    """SUP-STOCK: once a chain is booked at MAD, MAD needs one bill of materials within the horizon; with
    fewer syringes than that it is short, and MAD's QC analyst and manager (not LIS's) find it in their work
    with the quantity to order; with enough stock and no history it is not."""
    s.store("MAD")  # MAD keeps stock (a store), nothing in it yet
    proposal = next(p for p in booking.chain_propose(user=people["navigator.mad"], referral=ready)
                    if p.site.code == "MAD")
    booking.chain_book(actor=people["navigator.mad"], referral=ready, proposal=proposal, reason="Book the chain")
    per_batch = _per_batch(s.SYRINGE)
    need = _need(s.SYRINGE)
    assert (need.booked_batches, need.booked_need, need.stock) == (1, per_batch, 0)
    assert need.status == reorder.SHORT and need.order_quantity >= per_batch
    # Every material of the bill is short at MAD, none at LIS (nothing booked there, no stock kept).
    codes = {m["code"] for step in schema.iter_steps(h.world().content) for m in step.get("materials", [])}
    assert {n.material_code for n in reorder.needs(user=h.user("qa")) if n.status == reorder.SHORT} == codes
    for who, expected in (("qc.mad", len(codes)), ("manager.mad", len(codes)), ("qc.lis", 0), ("physician.mad", 0)):
        assert worklist.counts(h.user(who)).get("supply-reorder", 0) == expected, who
    item = next(q for q in worklist.queues_for(h.user("qc.mad")) if q.queue.key == "supply-reorder").items[0]
    assert "MAD:" in item.text and "booked batch" in item.text and item.late
    # Enough syringes for the booked chain and its lead time: not short, nothing to order.
    s.received(per_batch * 10)
    need = _need(s.SYRINGE)
    assert need.stock == per_batch * 10 and need.status == reorder.OK and need.order_quantity == 0
    assert need.reorder_point == (per_batch / reorder.HORIZON_WEEKS
                                  * (reorder.LEAD_TIME_WEEKS + reorder.SAFETY_WEEKS)).to_integral_value(
        rounding="ROUND_CEILING")


@pytest.mark.django_db
def test_history_sets_the_demand_when_nothing_is_booked_and_a_recalled_or_expiring_lot_is_not_usable():
    """SUP-STOCK SUP-RECALL: with no chain booked, weekly demand is what the steps consumed over the last
    weeks; a lot expiring within the lead time and a recalled lot are not usable stock; a lot expiring within
    30 days is work for the site's materials people."""
    batch = at_count_step()
    lot = s.received(20)
    record_count(batch, lot, 3)
    need = _need(s.SYRINGE)
    assert need.weekly_history == (Decimal(3) / reorder.HISTORY_WEEKS).quantize(Decimal("0.01"))
    assert need.stock == 17 and need.booked_batches == 0 and need.status == reorder.OK
    soon = s.received(5, expiry_days=10)  # expires within the lead time: not usable, but listed as expiring
    assert _need(s.SYRINGE).stock == 17
    expiring = [r["lot__lot_number"] for r in reorder.expiring(h.user("qc.mad"))]
    assert expiring == [soon.lot_number]
    assert not list(reorder.expiring(h.user("qc.lis")))
    recall.recall_open(actor=h.user("qa"), material_code=lot.material_code, lot_number=lot.lot_number,
                       reason="Supplier notice", credentials=h.creds("qa"))
    need = _need(s.SYRINGE)
    assert need.stock == 0 and need.status == reorder.REORDER and need.order_quantity == need.max_level


@pytest.mark.django_db
def test_the_needs_page_shows_each_position_with_its_assumptions(client):
    """SUP-STOCK: the page lists each site's position, short first, with the planning assumptions; a site
    person sees their own site only."""
    s.received(4)
    s.received(6, site_code="LIS")
    client.force_login(h.user("qa"))
    page = client.get(reverse("supply:reorder")).content.decode()
    assert f"need-MAD-{s.SYRINGE}" in page and f"need-LIS-{s.SYRINGE}" in page
    assert f"{reorder.LEAD_TIME_WEEKS} weeks of supplier lead time" in page
    client.force_login(h.user("qc.lis"))
    page = client.get(reverse("supply:reorder")).content.decode()
    assert f"need-LIS-{s.SYRINGE}" in page and "need-MAD-" not in page
