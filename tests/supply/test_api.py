"""Stock over the API (SUP-STOCK): stock per site × material (× lot, × location) as the sum of the
movements, the lot a step should take first, and the movements themselves — each scoped to the sites
where the person holds ``supply.view``, each hostile query a 400 naming its field; and goods receipts,
stored once per Idempotency-Key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from pocare.manufacturing.models import MaterialLot
from pocare.supply import selectors, services
from pocare.supply.models import StockMovement
from tests.manufacturing import helpers as h
from tests.supply import helpers as s
from tests.supply.test_step import at_count_step, record_count


def _client(username: str) -> Client:
    client = Client()
    client.force_login(h.user(username))
    return client


@pytest.fixture
def stocked(db):
    """MAD: a lot of 10 syringes (2 used at a step, 1 moved to the cold room) and a lot of 4 expiring
    later; LIS: a lot of 7."""
    batch = at_count_step()
    mad = s.received(10, expiry_days=60)
    later = s.received(4, expiry_days=200)
    record_count(batch, mad, 2)
    services.stock_transfer(actor=h.user("qc.mad"), lot=mad, source=s.store("MAD"),
                            destination=s.store("MAD", "COLD"), quantity=1, reason="Kept beside the isolator")
    lis = s.received(7, site_code="LIS")
    return {"mad": mad, "later": later, "lis": lis, "batch": batch}


def test_stock_is_the_sum_of_the_movements_per_site_material_lot_and_location(stocked):
    """SUP-STOCK: MAD's QC analyst reads MAD's stock only — 12 syringes (10 − 2 + 4), by lot 8 and 4, by
    location 7 in the store and 1 in the cold room (once emptied, left out unless asked for); Control Site
    QA reads both sites, per lot one site at a time."""
    mad, later = stocked["mad"], stocked["later"]
    client = _client("qc.mad")
    rows = client.get("/api/stock/").json()["rows"]
    assert [(r["site"], r["material_code"], r["quantity"]) for r in rows] == [("MAD", s.SYRINGE, "12.000")]
    by_lot = client.get("/api/stock/", {"by": "lot"}).json()["rows"]
    assert {(r["lot_number"], r["quantity"], r["status"]) for r in by_lot} == {
        (mad.lot_number, "8.000", "released"), (later.lot_number, "4.000", "released")}
    by_location = client.get("/api/stock/", {"by": "location", "material_code": s.SYRINGE}).json()["rows"]
    assert {(r["lot_number"], r["location"], r["quantity"]) for r in by_location} == {
        (mad.lot_number, "STORE", "7.000"), (mad.lot_number, "COLD", "1.000"), (later.lot_number, "STORE", "4.000")}
    assert client.get("/api/stock/", {"material_code": "TS520"}).json()["rows"] == []
    # A lot used up is left out unless asked for: the cold room's one syringe moved back to the store.
    services.stock_transfer(actor=h.user("qc.mad"), lot=mad, source=s.store("MAD", "COLD"),
                            destination=s.store("MAD"), quantity=1, reason="Back to the store")
    held = client.get("/api/stock/", {"by": "location"}).json()["rows"]
    assert (mad.lot_number, "COLD") not in {(r["lot_number"], r["location"]) for r in held}
    every = client.get("/api/stock/", {"by": "location", "empty": "true"}).json()["rows"]
    assert {(r["lot_number"], r["location"], r["quantity"]) for r in every} >= {(mad.lot_number, "COLD", "0.000")}
    network = _client("qa").get("/api/stock/").json()["rows"]
    assert {(r["site"], r["quantity"]) for r in network} == {("MAD", "12.000"), ("LIS", "7.000")}
    assert _client("qa").get("/api/stock/", {"site": "lis"}).json()["rows"][0]["quantity"] == "7.000"
    # Per lot, whoever sees several sites reads one at a time (a network's lots are its whole history).
    every_lot = _client("qa").get("/api/stock/", {"by": "lot"})
    assert every_lot.status_code == 400 and "one site at a time" in every_lot.json()["site"][0]
    assert len(_client("qa").get("/api/stock/", {"by": "lot", "site": "LIS"}).json()["rows"]) == 1


def test_another_sites_stock_reads_as_an_unknown_site_and_hostile_queries_name_their_field(stocked):
    """SUP-STOCK P11-10g: MAD's analyst asking for LIS gets the same 400 as for a site that does not
    exist; a NUL, 400 characters, an unknown grouping, a path in the material code are 400s naming
    the field; an anonymous caller is refused."""
    client = _client("qc.mad")
    other, unknown = client.get("/api/stock/", {"site": "LIS"}), client.get("/api/stock/", {"site": "ZZZ"})
    assert other.status_code == unknown.status_code == 400
    assert other.json()["site"] == [m.replace("'ZZZ'", "'LIS'") for m in unknown.json()["site"]]
    assert "No site whose stock you may see" in other.json()["site"][0]
    for field, value in (("site", "MAD\x00"), ("site", "M" * 400), ("by", "supplier"),
                         ("material_code", "../etc"), ("material_code", "9" * 400)):
        answer = client.get("/api/stock/", {field: value})
        assert answer.status_code == 400 and field in answer.json(), (field, value, answer.content)
    assert Client().get("/api/stock/").status_code in (401, 403)


def test_first_out_names_the_lot_a_step_should_take_for_its_quantity(stocked):
    """SUP-STOCK: the lots of syringes at MAD in expiry order, the first flagged; for more than the
    first lot holds, none; hostile quantities are 400s naming ``quantity``; another site is a 404."""
    mad, later = stocked["mad"], stocked["later"]
    client = _client("operator.mad")
    url = f"/api/stock/MAD/first-out/{s.SYRINGE}/"
    lots = client.get(url).json()
    assert [(lot["lot_number"], lot["quantity"], lot["first"]) for lot in lots] == [
        (mad.lot_number, "8.000", True), (later.lot_number, "4.000", False)]
    # 8 are left of the first lot, at two locations: a step that needs 9 is proposed none.
    assert not any(lot["first"] for lot in client.get(url, {"quantity": "9"}).json())
    for quantity in ("NaN", "Infinity", "-1", "0", "9" * 400, "1.0001"):
        answer = client.get(url, {"quantity": quantity})
        assert answer.status_code == 400 and "quantity" in answer.json(), (quantity, answer.content)
    assert client.get(f"/api/stock/LIS/first-out/{s.SYRINGE}/").status_code == 404
    assert client.get(f"/api/stock/MAD/first-out/{'9' * 400}/").json() == []


def test_the_movements_are_listed_with_their_events_for_the_sites_one_may_see(stocked):
    """SUP-STOCK ATMP-TRACE: MAD's analyst lists MAD's movements — each lot's receipt and release, the
    step's consumption naming the batch, the transfer between locations — each with its ledger event;
    LIS's receipt is not among them; filters by kind and lot; a hostile filter is a 400 naming it."""
    client = _client("qc.mad")
    rows = client.get("/api/stock/movements/").json()["results"]
    assert {r["site"] for r in rows} == {"MAD"}
    assert all(r["event"] and r["event"].startswith("MAD#") for r in rows)
    consumed = client.get("/api/stock/movements/", {"kind": "consumed"}).json()["results"]
    assert [(r["lot_number"], r["quantity"], r["batch"]) for r in consumed] == [
        (stocked["mad"].lot_number, "-2.000", stocked["batch"].reference)]
    of_lot = client.get("/api/stock/movements/", {"lot_number": stocked["later"].lot_number}).json()["results"]
    assert [r["kind"] for r in of_lot] == ["received", "released"]
    assert sum(float(r["quantity"]) for r in rows if r["lot_number"] == stocked["mad"].lot_number) == 8
    for field, value in (("kind", "stolen"), ("occurred_from", "0001-01-01T99"), ("site", "M" * 400)):
        answer = client.get("/api/stock/movements/", {field: value})
        assert answer.status_code == 400 and field in answer.json(), (field, value, answer.content)
    lis = _client("qc.lis").get("/api/stock/movements/").json()["results"]
    assert {r["site"] for r in lis} == {"LIS"} and sum(float(r["quantity"]) for r in lis) == 7


def test_the_stock_and_movement_reads_do_not_grow_with_the_lots(stocked):
    """SUP-STOCK (the issue's "stock level per site × material as one query"): the stock read and a page of
    movements cost the same number of queries with 3 lots as with 9 — the sum is one query, the rest is the
    session and the person's memberships."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client("qa")

    def queries() -> tuple[int, int]:
        counts = []
        for url in ("/api/stock/?by=location&site=MAD", "/api/stock/movements/"):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            counts.append(len(captured))
        return counts[0], counts[1]

    few = queries()
    for site_code in ("MAD", "LIS", "MAD", "LIS", "MAD", "LIS"):
        s.received(3, site_code=site_code)
    assert queries() == few
    with CaptureQueriesContext(connection) as captured:
        client.get("/api/stock/?by=location&site=MAD")
    assert sum("stockmovement" in q["sql"].lower() and "sum(" in q["sql"].lower() for q in captured) == 1


# --- goods receipts over the API ---------------------------------------------------------------------


def _receipt(**over: object) -> dict[str, object]:
    return {"site": "MAD", "location": "STORE", "supplier": "BD", "material_code": s.SYRINGE,
            "lot_number": "ERP-0001", "expiry_date": (timezone.now().date() + dt.timedelta(days=300)).isoformat(),
            "quantity": "24", "reason": "Delivery note 48211 checked", **over}


def _post_receipt(client: Client, body: dict[str, object], key: str | None = "erp-48211-1"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post("/api/stock/receipts/", body, content_type="application/json", **headers)


def test_a_receipt_over_the_api_is_stored_once_however_often_it_is_retried(stocked):
    """SUP-STOCK P11-10h: an ERP's receipt puts the lot into quarantine at the store (stock +24, a ledger event);
    the same receipt retried under the same key answers 200 with the first receipt and stores nothing; the key
    with another receipt is a 409, nothing stored; another client's same key is its own."""
    client = _client("qc.mad")
    first = _post_receipt(client, _receipt())
    assert first.status_code == 201, first.content
    answer = first.json()
    assert answer["lot_status"] == "quarantine" and answer["purchase"] is None
    assert (answer["movement"]["kind"], answer["movement"]["quantity"]) == ("received", "24.000")
    assert answer["movement"]["event"].startswith("MAD#")
    lot = MaterialLot.objects.get(site__code="MAD", lot_number="ERP-0001")
    assert selectors.lot_stock(lot) == 24
    movements = StockMovement.objects.count()
    again = _post_receipt(client, _receipt())
    assert again.status_code == 200 and again.json()["movement"]["id"] == answer["movement"]["id"]
    other = _post_receipt(client, _receipt(quantity="25"))
    assert other.status_code == 409 and "Idempotency-Key" in other.json()
    assert StockMovement.objects.count() == movements and selectors.lot_stock(lot) == 24
    manager = _post_receipt(_client("manager.mad"), _receipt(lot_number="ERP-0002"))
    assert manager.status_code == 201 and StockMovement.objects.count() == movements + 1


def test_a_receipt_against_a_purchase_records_the_delivery_with_its_invoice_price(stocked):
    """SUP-STOCK COST-BATCH: naming the purchase request, the receipt is a delivery against it with the invoice
    price of a unit; the answer says ordered and received; a price without a purchase, or a material or
    supplier other than the one ordered, is a 400 naming the field."""
    from tests.supply.test_purchases import _ordered

    request = _ordered(20)
    client = _client("qc.mad")
    answer = _post_receipt(client, _receipt(purchase=request.reference, quantity="8", unit_price="0.9"), "erp-pr-1")
    assert answer.status_code == 201, answer.content
    assert answer.json()["purchase"] == {"reference": request.reference, "status": "ordered", "ordered": "20.000",
                                         "received": "8.000"}
    assert request.deliveries.get().unit_price == Decimal("0.9")
    for key, body, field in (("k1", _receipt(unit_price="0.9", lot_number="ERP-9"), "unit_price"),
                             ("k2", _receipt(purchase=request.reference, material_code="TS520"), "material_code"),
                             ("k3", _receipt(purchase=request.reference, supplier="Miltenyi Biotec"), "supplier"),
                             ("k4", _receipt(purchase="PR-2026-9999"), "purchase")):
        refused = _post_receipt(client, body, key)
        assert refused.status_code == 400 and field in refused.json(), (field, refused.content)
    assert request.deliveries.count() == 1


def test_hostile_receipts_are_400s_naming_the_field_and_store_nothing(stocked):
    """SUP-STOCK P11-10g: no key, a 101-character key, another site's store, an unknown location, supplier or
    material, an expiry in year 1 or 9999, a NaN or 400-digit quantity, a NUL in the lot number, no reason,
    JSON nested 20,000 deep: each a 400 naming its field, nothing stored; a person who does not receive stock
    is refused."""
    client = _client("qc.mad")
    movements, lots = StockMovement.objects.count(), MaterialLot.objects.count()
    cases = [(None, {}, "Idempotency-Key"), ("x" * 101, {}, "Idempotency-Key"),
             ("h1", {"site": "LIS"}, "site"), ("h2", {"site": "M" * 400}, "site"),
             ("h3", {"location": "VAULT"}, "location"), ("h4", {"supplier": "Nobody Ltd"}, "supplier"),
             ("h5", {"material_code": "TS-NONE"}, "material_code"), ("h6", {"expiry_date": "0001-01-01"}, "expiry_date"),
             ("h7", {"expiry_date": "9999-12-31"}, "expiry_date"), ("h8", {"quantity": "NaN"}, "quantity"),
             ("h9", {"quantity": "9" * 400}, "quantity"), ("h10", {"lot_number": "ERP\x00"}, "lot_number"),
             ("h11", {"reason": ""}, "reason"), ("h12", {"quantity": "-3"}, "quantity")]
    for key, over, field in cases:
        refused = _post_receipt(client, _receipt(**over), key)
        assert refused.status_code == 400 and field in refused.json(), (field, over, refused.content)
    deep = "[" * 20_000 + "]" * 20_000
    nested = client.post("/api/stock/receipts/", f'{{"site": {deep}}}', content_type="application/json",
                         HTTP_IDEMPOTENCY_KEY="deep")
    assert nested.status_code == 400
    assert (StockMovement.objects.count(), MaterialLot.objects.count()) == (movements, lots)
    assert _post_receipt(_client("operator.mad"), _receipt(), "op").status_code == 403
    assert _post_receipt(Client(), _receipt(), "anon").status_code in (401, 403)
