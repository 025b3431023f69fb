"""Consumption at the step (SUP-STOCK, ATMP-TRACE): the quantity used is recorded with the lot in
the step's transaction and decrements stock there, through manufacturing's question
``manufacturing.materials_used``; a lot in quarantine, rejected, expired, from a supplier no longer
qualified, or without enough stock is refused at the step, naming the material, and the step is not
recorded. Two steps taking the last units of one lot at once on PostgreSQL: one wins."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection

from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import Batch, MaterialUse, StepExecution
from pocare.supply import selectors, services
from pocare.supply.models import MovementKind, StockMovement
from tests import clock
from tests.manufacturing import helpers as h
from tests.supply import helpers as s
from tests.web.helpers import free_unit

COUNT_STEP = "apheresis-count"  # the first step of the demo process that uses a material (a syringe)


def at_count_step(site_code: str = "MAD") -> Batch:
    """A batch in progress whose next step is the apheresis count."""
    batch = h.started_batch(site_code)
    while mfg.next_step(batch)[1]["id"] != COUNT_STEP:
        h.do_step(batch)
    return batch


def record_count(batch: Batch, lot: Any, quantity: Any = 1) -> Any:
    """Record the apheresis count with ``quantity`` syringes of ``lot``."""
    return h.do_step(batch, materials={s.SYRINGE: {"lot": lot.lot_number, "quantity": quantity}})


def refused_at_step(batch: Batch, lot: Any, quantity: Any = 1) -> str:
    """The message naming the syringe when the step is refused; asserts nothing was recorded."""
    uses, movements = MaterialUse.objects.count(), StockMovement.objects.count()
    with pytest.raises(ValidationError) as refused:
        record_count(batch, lot, quantity)
    assert (MaterialUse.objects.count(), StockMovement.objects.count()) == (uses, movements)
    assert not StepExecution.objects.filter(batch=batch, step_id=COUNT_STEP, performed_at__isnull=False).exists()
    return " ".join(refused.value.message_dict[f"materials.{s.SYRINGE}"])


@pytest.mark.django_db
def test_the_step_decrements_stock_in_its_own_transaction_naming_the_use():
    """SUP-STOCK ATMP-TRACE: recording the step writes a ``consumed`` movement for the use, in the
    step's transaction, with its ledger event; stock is what the movements add up to."""
    batch = at_count_step()
    lot = s.received(10)
    record_count(batch, lot, 2)
    use = MaterialUse.objects.get(step__batch=batch, lot=lot)
    consumed = StockMovement.objects.get(use=use)
    assert consumed.kind == MovementKind.CONSUMED and consumed.quantity == Decimal("-2.000")
    assert consumed.batch == batch and consumed.event.event_type == "supply.stock_consumed"
    assert selectors.lot_stock(lot) == 8
    assert selectors.batch_reconciliation(batch) == [
        {"lot_id": lot.pk, "lot_number": lot.lot_number, "unit": "count", "issued": 0, "consumed": Decimal("2.000"),
         "returned": 0}]
    # What the batch did not use comes back, never more than left for it.
    services.stock_return(actor=h.user("qc.mad"), location=s.store("MAD"), lot=lot, quantity=1, batch=batch,
                          reason="Spare syringe unopened")
    with pytest.raises(ValidationError, match="left the store"):
        services.stock_return(actor=h.user("qc.mad"), location=s.store("MAD"), lot=lot, quantity=2, batch=batch,
                              reason="More than was used")
    assert selectors.lot_stock(lot) == 9


@pytest.mark.django_db
def test_material_issued_to_a_batch_is_reconciled_and_only_released_material_is_issued():
    """SUP-STOCK: material issued to a batch outside its steps and consumed at a step both left the
    store for the batch; what comes back is bounded by them; a lot in quarantine is not issued."""
    batch = at_count_step()
    lot = s.received(10)
    qc, store = h.user("qc.mad"), s.store("MAD")
    services.stock_issue(actor=qc, location=store, lot=lot, quantity=2, batch=batch, reason="Spare syringes")
    record_count(batch, lot, 1)
    services.stock_return(actor=qc, location=store, lot=lot, quantity=2, batch=batch, reason="Spares unused")
    [line] = selectors.batch_reconciliation(batch)
    assert (line["issued"], line["consumed"], line["returned"]) == (2, 1, 2)
    assert selectors.lot_stock(lot) == 10 - 2 - 1 + 2
    waiting = s.received(5, release=False)
    with pytest.raises(ValidationError, match="quarantine, not released"):
        services.stock_issue(actor=qc, location=store, lot=waiting, quantity=1, batch=batch, reason="Spare")


@pytest.mark.django_db
def test_a_lot_never_received_into_stock_is_used_as_before():
    """A site that keeps no stock of a material (its lot never received through supply) records the
    step as before: no movement is written (docs/supply.md, "not stock-managed")."""
    batch = at_count_step()
    h.do_step(batch)
    assert not StockMovement.objects.filter(batch=batch).exists()


@pytest.mark.django_db
def test_too_little_stock_refuses_the_step_naming_the_material():
    """SUP-STOCK: the step needs more than is in stock: refused, nothing recorded, stock unchanged."""
    batch = at_count_step()
    lot = s.received(3)
    assert "only 3 of lot" in refused_at_step(batch, lot, 5)
    assert selectors.lot_stock(lot) == 3


@pytest.mark.django_db
def test_quarantined_rejected_and_expired_lots_are_refused_at_the_step():
    """SUP-STOCK P11-10h: a lot in quarantine, a rejected lot and an expired lot are refused at the
    step, naming the material; a released lot in date is taken."""
    batch = at_count_step()
    waiting = s.received(5, release=False)
    assert "quarantine, not released" in refused_at_step(batch, waiting)
    rejected = s.received(5, release=False)
    services.stock_lot_decide(actor=h.user("qc.mad"), lot=rejected, decision="rejected", reason="CoA out of spec",
                              credentials=h.creds("qc.mad"))
    assert "rejected, not released" in refused_at_step(batch, rejected)
    short_dated = s.received(5, expiry_days=1)
    good = s.received(5, expiry_days=100)
    clock.advance(dt.timedelta(days=3))
    assert "expired on" in refused_at_step(batch, short_dated)
    record_count(batch, good)
    assert selectors.lot_stock(good) == 4


@pytest.mark.django_db
def test_a_lot_of_a_supplier_disqualified_after_its_release_is_refused_at_the_step():
    """SUP-STOCK: only material from an approved supplier is used: once QA disqualifies the supplier,
    its released lot is refused at the step, naming the supplier."""
    batch = at_count_step()
    lot = s.received(5)
    services.supplier_qualify(actor=h.user("qa"), supplier=s.supplier(), status="disqualified",
                              reason="Recall of sterile syringes", credentials=h.creds("qa"))
    assert "BD, which is disqualified" in refused_at_step(batch, lot)


@pytest.mark.django_db
def test_a_hostile_quantity_at_the_step_is_refused_naming_the_material():
    """P11-10h: NaN, a 400-digit number or a fourth decimal at the step is refused naming the material
    (it used to reach the database)."""
    batch = at_count_step()
    lot = s.received(5)
    for quantity in ("NaN", "9" * 400, "1.0001", "Infinity"):
        assert "finite number" in refused_at_step(batch, lot, quantity)


@pytest.mark.skipif("connection.vendor == 'sqlite'",
                    reason="SQLite has one write lock for the whole database: no two steps run at once")
def test_two_steps_taking_the_last_units_of_a_lot_at_once_one_wins_the_other_is_told(tx_db):
    """SUP-STOCK (issue 18): two batches at one site record their step at the same moment, each
    taking 2 of the last 3 syringes of one lot: one step is recorded and consumes, the other is
    refused naming the material, and stock is the sum of the movements (1, never below zero)."""
    free_unit("MAD")
    free_unit("MAD")
    batches = [at_count_step(), at_count_step()]
    lot = s.received(3)
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def operator(i: int) -> None:
        close_old_connections()
        try:
            barrier.wait(timeout=30)
            outcomes[i] = record_count(batches[i], lot, 2)
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=operator, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    lost = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(lost) == 1 and len([o for o in outcomes if o is not None and o not in lost]) == 1, outcomes
    assert f"materials.{s.SYRINGE}" in lost[0].message_dict
    assert StockMovement.objects.filter(lot=lot, kind=MovementKind.CONSUMED).count() == 1
    assert MaterialUse.objects.filter(lot=lot).count() == 1
    assert selectors.lot_stock(lot) == 1
