"""Stock over the API (SUP-STOCK): stock per site × material (× lot, × location) as the sum of the
movements, the lot a step should take first, and the movements themselves — each scoped to the sites
where the person holds ``supply.view``, each hostile query a 400 naming its field."""

from __future__ import annotations

import pytest
from django.test import Client

from pocare.supply import services
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
    location 7 in the store and 1 in the cold room; Control Site QA reads both sites."""
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
    network = _client("qa").get("/api/stock/").json()["rows"]
    assert {(r["site"], r["quantity"]) for r in network} == {("MAD", "12.000"), ("LIS", "7.000")}
    assert _client("qa").get("/api/stock/", {"site": "lis"}).json()["rows"][0]["quantity"] == "7.000"


def test_another_sites_stock_reads_as_an_unknown_site_and_hostile_queries_name_their_field(stocked):
    """SUP-STOCK P11-10g: MAD's analyst asking for LIS gets the same 400 as for a site that does not
    exist; a NUL, 400 characters, an unknown grouping, a path in the material code are 400s naming
    the field; an anonymous caller is refused."""
    client = _client("qc.mad")
    other, unknown = client.get("/api/stock/", {"site": "LIS"}), client.get("/api/stock/", {"site": "ZZZ"})
    assert other.status_code == unknown.status_code == 400
    assert other.json()["site"][0].replace("'LIS'", "") == unknown.json()["site"][0].replace("'ZZZ'", "")
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
        for url in ("/api/stock/?by=location", "/api/stock/movements/"):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            counts.append(len(captured))
        return counts[0], counts[1]

    few = queries()
    for site_code in ("MAD", "LIS", "MAD", "LIS", "MAD", "LIS"):
        s.received(3, site_code=site_code)
    assert queries() == few
    with CaptureQueriesContext(connection) as captured:
        client.get("/api/stock/?by=location")
    assert sum("stockmovement" in q["sql"].lower() and "sum(" in q["sql"].lower() for q in captured) == 1
