"""Stock of a site by location and lot (pocare.supply): every movement a ledger event, stock the sum
of the movements in one query, first expiry first out, suppliers qualified and approved per
material, and hostile input refused with the field named and nothing stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.utils import timezone

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.ledger.models import Event, Signature
from pocare.manufacturing import services as mfg
from pocare.manufacturing.models import MaterialLot
from pocare.network.models import Site
from pocare.supply import selectors, services
from pocare.supply.models import LocationKind, MovementKind, StockMovement, Supplier
from tests import clock
from tests.manufacturing import helpers as h
from tests.supply import helpers as s

pytestmark = pytest.mark.django_db


def test_stock_is_the_sum_of_the_movements_at_each_location_and_each_movement_is_an_event():
    """SUP-STOCK ATMP-TRACE: received, transferred to the depot, destroyed, counted: the stock per
    site × material, per lot and per location is what the movements add up to, and each movement
    names the ledger event that stamped it."""
    store = s.store("MAD")
    depot = s.store("MAD", "DEPOT", kind=LocationKind.DEPOT, serves=("LIS",))
    lot = s.received(10)
    qc = h.user("qc.mad")
    services.stock_transfer(actor=qc, source=store, destination=depot, lot=lot, quantity=4, reason="Buffer stock")
    services.stock_destroy(actor=qc, location=store, lot=lot, quantity="1.5", reason="Packaging damaged")
    adjusted = services.stock_adjust(actor=h.user("manager.mad"), location=depot, lot=lot, counted=3,
                                     reason="Cycle count: one syringe missing", credentials=h.creds("manager.mad"))
    assert adjusted.quantity == Decimal("-1.000") and adjusted.kind == MovementKind.ADJUSTED
    assert Signature.objects.filter(record_type="supply.StockMovement", record_id=str(adjusted.pk),
                                    meaning="verified").exists()

    rows = StockMovement.objects.filter(lot=lot)
    by_site = selectors.stock_levels(user=h.user("qa"))
    assert s.total(by_site, site="MAD", material_code=s.SYRINGE) == rows.aggregate(t=Sum("quantity"))["t"] \
        == Decimal("7.500")
    by_location = selectors.stock_levels(user=h.user("qa"), by_lot=True, by_location=True)
    assert s.total(by_location, lot_id=lot.pk, location="STORE") == Decimal("4.500")
    assert s.total(by_location, lot_id=lot.pk, location="DEPOT") == Decimal("3.000")
    assert selectors.lot_stock(lot) == Decimal("7.500")
    kinds = list(rows.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["received", "released", "transferred_out", "transferred_in", "destroyed", "adjusted"]
    for movement in rows:
        assert movement.event is not None and movement.event.chain.split("/")[0] == "MAD"
        assert movement.event.event_type.startswith("supply.stock_")


def test_stock_never_goes_below_zero_and_a_return_is_bounded_by_what_left_for_the_batch():
    """SUP-STOCK: destroying more than is there is refused, naming the quantity; nothing is written."""
    lot = s.received(2)
    before = StockMovement.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.stock_destroy(actor=h.user("qc.mad"), location=s.store("MAD"), lot=lot, quantity=3,
                               reason="Dropped")
    assert "below zero" in " ".join(refused.value.message_dict["quantity"])
    assert StockMovement.objects.count() == before and selectors.lot_stock(lot) == 2


def test_the_stock_selector_is_one_query_however_many_lots_and_materials():
    """SUP-STOCK (issue 18's benchmark): stock per site × material, and per lot, in ONE query."""
    s.received(5)
    s.received(7)
    s.received(3, material="TS520", unit="kit", by=s.supplier(material="TS520"))
    qa = h.user("qa")
    sites_with_perm(qa, Perm.SUPPLY_VIEW)  # the person's memberships, read once per request
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        rows = selectors.stock_levels(user=qa)
    assert len(queries) == 1
    assert s.total(rows, site="MAD", material_code=s.SYRINGE) == 12
    assert s.total(rows, site="MAD", material_code="TS520") == 3
    with CaptureQueriesContext(connection) as queries:
        lots = selectors.stock_levels(user=qa, by_lot=True)
    assert len(queries) == 1 and len(lots) == 3


def test_a_site_sees_its_own_stock_only():
    """Rule 4 of the house: a site's people see their site's stock; Control Site QA the network's."""
    s.received(5, site_code="MAD")
    s.received(4, site_code="LIS", by=s.supplier())
    assert {r["site"] for r in selectors.stock_levels(user=h.user("operator.mad"))} == {"MAD"}
    assert {r["site"] for r in selectors.stock_levels(user=h.user("qa"))} >= {"MAD", "LIS"}
    assert selectors.stock_levels(user=h.user("physician.mad")) == []


def test_first_expiry_first_out_proposes_released_unexpired_lots_with_stock_in_expiry_order():
    """SUP-STOCK: the proposal lists released, unexpired lots with stock, the first to expire first;
    a lot in quarantine or with no stock left is not proposed."""
    late = s.received(5, expiry_days=300)
    early = s.received(5, expiry_days=60)
    s.received(5, expiry_days=10, release=False)  # in quarantine
    empty = s.received(1, expiry_days=30)
    services.stock_destroy(actor=h.user("qc.mad"), location=s.store("MAD"), lot=empty, quantity=1, reason="Broken")
    proposal = selectors.fefo_proposal(site=Site.objects.get(code="MAD"), material_code=s.SYRINGE)
    assert [p.lot_id for p in proposal][:2] == [early.pk, late.pk]
    assert empty.pk not in [p.lot_id for p in proposal]


def test_an_expired_lot_is_written_off_and_no_longer_proposed():
    """SUP-STOCK: what is left of an expired lot is written off with its reason; a lot not yet
    expired is not."""
    lot = s.received(6, expiry_days=2)
    with pytest.raises(ValidationError, match="expires only"):
        services.stock_expire(actor=h.user("qc.mad"), location=s.store("MAD"), lot=lot, reason="Expired")
    clock.advance(dt.timedelta(days=4))
    assert lot.pk not in [p.lot_id for p in selectors.fefo_proposal(site=lot.site, material_code=s.SYRINGE)]
    row = services.stock_expire(actor=h.user("qc.mad"), location=s.store("MAD"), lot=lot, reason="Expired")
    assert row.quantity == -6 and selectors.lot_stock(lot) == 0


# --- suppliers -----------------------------------------------------------------------------------------


def test_a_lot_of_a_supplier_not_approved_for_the_material_is_not_released():
    """SUP-STOCK: for a material with approved suppliers, a lot of another supplier (received through
    manufacturing's own receipt) stays in quarantine: the release is refused, naming the supplier."""
    s.supplier()
    qc = h.user("qc.mad")
    lot = mfg.lot_receive(actor=qc, site=Site.objects.get(code="MAD"), material_code=s.SYRINGE, name="Syringe",
                          lot_number="GREY-1", supplier="Grey Market Ltd", reason="receipt",
                          expiry_date=timezone.now().date() + dt.timedelta(days=90))
    with pytest.raises(ValidationError, match="Grey Market Ltd, which is not an approved supplier"):
        mfg.lot_decide(actor=qc, lot=lot, decision="released", reason="ok", credentials=h.creds(qc))
    lot.refresh_from_db()
    assert lot.status == "quarantine"
    mfg.lot_decide(actor=qc, lot=lot, decision="rejected", reason="Unapproved supplier", credentials=h.creds(qc))


def test_a_disqualified_supplier_delivers_nothing_and_its_lots_in_quarantine_are_not_released():
    """SUP-STOCK: QA disqualifies a supplier (signed, with the reason; the earlier status stays in the
    ledger); its lot waiting in quarantine is not released and no new delivery is received."""
    bd = s.supplier()
    waiting = s.received(5, release=False)
    services.supplier_qualify(actor=h.user("qa"), supplier=bd, status="disqualified",
                              reason="Audit found sterility assurance gaps", credentials=h.creds("qa"))
    bd.refresh_from_db()
    assert bd.status == "disqualified" and bd.status_reason.startswith("Audit found")
    assert Event.objects.filter(event_type="supply.supplier_qualified", object_id=str(bd.pk)).exists()
    with pytest.raises(ValidationError, match="disqualified"):
        services.stock_lot_decide(actor=h.user("qc.mad"), lot=waiting, decision="released", reason="CoA ok",
                                  credentials=h.creds("qc.mad"))
    with pytest.raises(ValidationError) as refused:
        s.received(5)
    assert "disqualified" in " ".join(refused.value.message_dict["supplier"])


def test_only_control_site_qa_qualifies_suppliers_and_only_the_site_moves_its_stock():
    """P11-10g: suppliers are qualified by Control Site QA; a site's stock is moved by its own people."""
    with pytest.raises(PermissionDenied):
        services.supplier_register(actor=h.user("manager.mad"), name="Acme", status="approved", reason="x",
                                   credentials=h.creds("manager.mad"))
    lot = s.received(3)
    with pytest.raises(PermissionDenied):
        services.stock_destroy(actor=h.user("qc.lis"), location=s.store("MAD"), lot=lot, quantity=1, reason="x")
    with pytest.raises(PermissionDenied):
        services.stock_destroy(actor=h.user("qa"), location=s.store("MAD"), lot=lot, quantity=1, reason="x")


# --- hostile input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", "9" * 400),
    ("quantity", "NaN"),
    ("quantity", float("nan")),
    ("quantity", "1e400"),
    ("quantity", -5),
    ("quantity", 0),
    ("quantity", "1.0001"),
    ("quantity", "1\x00"),
    ("lot_number", "L\x00T"),
    ("material_code", "SYR\x00"),
    ("unit", "count\x00"),
    ("unit", "mL"),
    ("reason", "ok\x00"),
    ("expiry_date", "9999-12-31"),
    ("expiry_date", dt.date(9999, 12, 31)),
    ("expiry_date", "2020-01-01"),
    ("expiry_date", "31/12/2027"),
    ("material_code", "NOT-IN-THE-BILL"),
])
def test_hostile_input_at_receipt_is_refused_naming_the_field_and_nothing_is_stored(field, value):
    """SUP-STOCK P11-10h: a 400-digit number, NaN, a negative quantity, a NUL, the year 9999: each
    refused with the field named; no lot, no movement, no event is stored."""
    supplier, store = s.supplier(), s.store("MAD")
    given = {"material_code": s.SYRINGE, "lot_number": "HOSTILE-1", "quantity": 5, "unit": "count",
             "expiry_date": timezone.now().date() + dt.timedelta(days=90), "reason": "Goods receipt",
             field: value}
    counts = (MaterialLot.objects.count(), StockMovement.objects.count(), Event.objects.count())
    with pytest.raises(ValidationError) as refused:
        services.stock_receive(actor=h.user("qc.mad"), location=store, supplier=supplier, **given)
    assert field in refused.value.message_dict, refused.value.message_dict
    assert (MaterialLot.objects.count(), StockMovement.objects.count(), Event.objects.count()) == counts


@pytest.mark.parametrize("counted", ["9" * 400, "NaN", -1, "inf", None, True])
def test_a_hostile_count_is_refused_naming_the_count(counted):
    """SUP-STOCK: a cycle count is a number from 0 up; anything else is refused naming ``counted``."""
    lot = s.received(3)
    before = StockMovement.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.stock_adjust(actor=h.user("manager.mad"), location=s.store("MAD"), lot=lot, counted=counted,
                              reason="Count", credentials=h.creds("manager.mad"))
    assert "counted" in refused.value.message_dict
    assert StockMovement.objects.count() == before


def test_a_supplier_name_with_a_nul_is_refused():
    with pytest.raises(ValidationError) as refused:
        services.supplier_register(actor=h.user("qa"), name="Acme\x00", status="approved", reason="Audited",
                                   credentials=h.creds("qa"))
    assert "name" in refused.value.message_dict and not Supplier.objects.filter(name__startswith="Acme").exists()


# --- the stock page ------------------------------------------------------------------------------------------


def test_the_stock_page_shows_a_site_its_own_stock_and_the_network_to_control_site_qa(client, login):
    """Rule 4 of the house, SUP-STOCK: the site manager sees Madrid's lot, not Lisbon's; QA sees both;
    a physician (no ``supply.view``) is refused. The permission matrix covers every role."""
    mad = s.received(5, site_code="MAD")
    lis = s.received(4, site_code="LIS", by=s.supplier())
    login("manager.mad")
    page = client.get("/supply/stock/")
    assert page.status_code == 200
    text = page.content.decode()
    assert mad.lot_number in text and lis.lot_number not in text
    client.logout()
    login("qa")
    text = client.get("/supply/stock/").content.decode()
    assert mad.lot_number in text and lis.lot_number in text
    client.logout()
    login("physician.mad")
    assert client.get("/supply/stock/").status_code == 403
