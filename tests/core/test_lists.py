"""Every list page is paged with its total, searchable, filterable, sortable and exportable to CSV,
and its API takes the same filters (issue 15; pocare.core.listing). One table of lists, the same
checks on each: total and page 2, search hit and miss, a filter, sort both ways, CSV header and rows
(filtered too, formula cells neutralised), API parity, hostile parameters, site scoping in the page,
its count and its CSV, and the same number of queries at two data sizes.

Rows are made through the real services. Site scoping (P11-10g): a person at one site never sees
another site's rows, on the page, in its total or in its CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.accounts import services as accounts
from pocare.accounts.roles import Role
from pocare.core.listing import csv_cell
from pocare.ledger.signing import SigningCredentials
from pocare.manufacturing import services as manufacturing
from pocare.manufacturing.models import MaterialLot
from pocare.network.models import Site
from pocare.network.services import unit_register
from tests.conftest import PASSWORD
from tests.custody import helpers as custody_h
from tests.masterfile import helpers as masterfile_h
from tests.quality import helpers as quality_h

pytestmark = pytest.mark.django_db

_n = itertools.count(1)


def _site(code: str) -> Site:
    return Site.objects.get(code=code)


def _lot(code: str) -> str:
    number = f"=LOT{next(_n):04d}"  # a formula start: the CSV must neutralise it
    manufacturing.lot_receive(actor=quality_h.user(f"qc.{code.lower()}"), site=_site(code), material_code="TS520",
                              name="Transduction enhancer", lot_number=number,
                              expiry_date=timezone.now().date() + dt.timedelta(days=100), reason="goods receipt")
    return number


def _deviation(code: str) -> str:
    return quality_h.deviation(code, title=f"@list test {next(_n)}").reference


def _order(code: str) -> str:
    recipient = f"PT-L{next(_n):04d}"
    custody_h.order(code, recipient=recipient)
    return recipient


def _change(code: str) -> str:
    return masterfile_h.raise_change(sites=(code,), title=f"+list change {next(_n)}").reference


def _person(code: str) -> str:
    name = f"list.person{next(_n):04d}"
    person = accounts.user_create(actor=quality_h.user("qa"), username=name, printed_name=f"-List Person {name}",
                                  email=f"{name}@example.org", reason="list test")
    accounts.membership_grant(actor=quality_h.user("qa"), user=person, role=Role.OPERATOR, site=_site(code),
                              reason="list test")
    return name


def _unit(code: str) -> str:
    serial = f"PRD-L{next(_n):04d}"
    site = _site(code)
    today = timezone.now().date()
    unit_register(actor=quality_h.user("qa"), site=site, device_type="clinimacs_prodigy", serial=serial,
                  calibration_due=today + dt.timedelta(days=90), maintenance_due=today + dt.timedelta(days=120),
                  reason="IQ/OQ complete", model="CliniMACS Prodigy")
    return serial


def _training(code: str) -> str:
    from tests.training.helpers import train

    title = f"=Training {next(_n):04d}"  # a formula start: the CSV must neutralise it
    train(f"operator.{code.lower()}", site_code=code, title=title)
    return title


def _batch(code: str) -> str:
    from tests.manufacturing.helpers import started_batch

    return started_batch(code).reference


@dataclass(frozen=True)
class Case:
    """One list: its page, its API, who sees one site only, how to make a row (returns its key,
    a text shown in its row), and the sort key that orders rows by that key."""

    name: str
    url: str
    api: str | None
    make: Callable[[str], str]
    sort: str
    site_person: str
    api_key: str = ""

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("lots", "/manufacturing/lots/", None, _lot, "lot", "operator.mad"),
    Case("deviations", "/quality/", "/api/deviations/", _deviation, "reference", "operator.mad", "reference"),
    Case("orders", "/custody/", "/api/custody/orders/", _order, "recipient", "manager.mad", "recipient_id"),
    Case("changes", "/masterfile/changes/", "/api/masterfile/changes/", _change, "reference", "manager.mad",
         "reference"),
    Case("people", "/people/", "/api/users/", _person, "username", "manager.mad", "username"),
    Case("batches", "/manufacturing/", "/api/batches/", _batch, "reference", "operator.mad", "reference"),
    Case("units", "/network/units/", "/api/units/", _unit, "serial", "operator.mad", "serial"),
    Case("training records", "/training/records/", "/api/training/records/", _training, "title", "manager.mad",
         "title"),
]


def _body(response: Any) -> str:
    return (b"".join(response.streaming_content) if response.streaming else response.content).decode()


def _total(page: str) -> tuple[int, int, int]:
    found = re.search(r'list-total"><strong>(\d+)–(\d+)</strong> of <strong>(\d+)</strong>', page)
    assert found, "no total on the page"
    first, last, total = (int(g) for g in found.groups())
    return first, last, total


def _csv(client: Any, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), _body(response)[:300]
    return list(csv.DictReader(io.StringIO(_body(response))))


@pytest.fixture(params=CASES, ids=str)
def case(request: Any) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def rows(case: Case, people: Any) -> dict[str, list[str]]:
    """Two rows at MAD, one at LIS."""
    return {"MAD": [case.make("MAD"), case.make("MAD")], "LIS": [case.make("LIS")]}


def test_a_list_is_paged_with_its_total_and_sorted_both_ways(client, login, case, rows):
    """Issue 15: "1–1 of N", page 2, and sort ascending and descending by a column."""
    login("qa")
    mine = sorted(rows["MAD"] + rows["LIS"])
    first = _body(client.get(f"{case.url}?q=&sort={case.sort}&per_page=1"))
    total = _total(first)[2]
    assert total >= 3 and _total(first)[:2] == (1, 1)
    second = client.get(f"{case.url}?sort={case.sort}&per_page=1&page=2")
    assert second.status_code == 200 and _total(_body(second))[:2] == (2, 2)
    assert 'rel="prev"' in _body(second)
    up = _body(client.get(f"{case.url}?sort={case.sort}&per_page=200"))
    down = _body(client.get(f"{case.url}?sort=-{case.sort}&per_page=200"))
    assert [up.index(k) for k in mine] == sorted(up.index(k) for k in mine)
    assert [down.index(k) for k in mine] == sorted((down.index(k) for k in mine), reverse=True)
    assert 'aria-sort="ascending"' in up and 'aria-sort="descending"' in down


def test_a_list_is_searched_and_filtered(client, login, case, rows):
    """Issue 15: a search that hits one row, one that misses, and the site filter."""
    login("qa")
    target = rows["MAD"][0]
    hit = _body(client.get(case.url, {"q": target}))
    assert target in hit and rows["LIS"][0] not in hit and _total(hit)[2] == 1
    miss = client.get(case.url, {"q": "no-such-thing-zz"})
    assert miss.status_code == 200 and "Nothing matches" in _body(miss)
    lis = _body(client.get(case.url, {"site": "LIS", "per_page": 200}))
    assert rows["LIS"][0] in lis and not any(k in lis for k in rows["MAD"])


def test_a_list_exports_what_it_shows_as_safe_csv(client, login, case, rows):
    """Issue 15: the CSV has a header and the rows, takes the same filters, and neutralises cells a
    spreadsheet would run (= + - @)."""
    login("qa")
    everything = _csv(client, f"{case.url}?export=csv")
    text = "\n".join(",".join(r.values()) for r in everything)
    assert everything and all(csv_cell(k) in text for keys in rows.values() for k in keys)
    assert not any(v.startswith(("=", "+", "-", "@")) for r in everything for v in r.values())
    only_lis = _csv(client, f"{case.url}?export=csv&site=LIS")
    text = "\n".join(",".join(r.values()) for r in only_lis)
    assert csv_cell(rows["LIS"][0]) in text and not any(csv_cell(k) in text for k in rows["MAD"])
    assert _csv(client, f"{case.url}?export=csv&q=no-such-thing-zz") == []


def test_the_api_takes_the_same_filters(client, login, case, rows):
    """Issue 15: the API list filters, searches and sorts with the page's FilterSet."""
    if case.api is None:
        pytest.skip(f"{case.name} has no API list")
    login("qa")
    found = client.get(case.api, {"q": rows["MAD"][0]}).json()["results"]
    assert [r[case.api_key] for r in found] == [rows["MAD"][0]]
    lis = client.get(case.api, {"site": "LIS", "limit": 1000}).json()["results"]
    keys = [r[case.api_key] for r in lis]
    assert rows["LIS"][0] in keys and not set(rows["MAD"]) & set(keys)
    refused = client.get(case.api, {"sort": "nonsense"})
    assert refused.status_code == 400 and "sort" in refused.json()


@pytest.mark.parametrize(("query", "field"), [
    ("sort=nonsense", "sort"), ("sort=-nonsense", "sort"), ("per_page=100000", "per_page"), ("per_page=0", "per_page"),
    ("per_page=abc", "per_page"), ("page=abc", "page"), ("q=a%00b", "q"), ("page=" + "9" * 400, "page"),
])
def test_hostile_list_parameters_are_refused_by_name(client, login, case, query, field):
    """Issue 15, hostile input: a clear 4xx that names the field; nothing breaks."""
    login("qa")
    response = client.get(f"{case.url}?{query}")
    assert response.status_code == 400, query
    assert field in _body(response)
    if query.startswith("sort="):
        assert "Allowed:" in _body(response) and case.sort in _body(response)
    csv_refused = client.get(f"{case.url}?{query}&export=csv")
    assert csv_refused.status_code == 400 and field in _body(csv_refused)


@pytest.mark.parametrize("page", ["0", "-1", "99999"])
def test_a_page_past_either_end_is_clamped(client, login, case, page):
    """Issue 15: page=0, -1 or past the last page shows the first or the last page."""
    login("qa")
    response = client.get(f"{case.url}?page={page}")
    assert response.status_code == 200


def test_a_site_person_sees_only_their_site_in_the_list_its_total_and_its_csv(client, login, case, rows):
    """P11-10g: another site's rows are in neither the page, its count, the CSV nor a search."""
    login(case.site_person)
    page = _body(client.get(case.url, {"per_page": 200}))
    assert all(k in page for k in rows["MAD"]) and rows["LIS"][0] not in page
    assert "Nothing matches" in _body(client.get(case.url, {"q": rows["LIS"][0]}))
    exported = "\n".join(",".join(r.values()) for r in _csv(client, f"{case.url}?export=csv"))
    assert csv_cell(rows["LIS"][0]) not in exported and all(csv_cell(k) in exported for k in rows["MAD"])
    login("qa")
    assert _total(_body(client.get(case.url)))[2] > _total(page)[2]


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        _body(response)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def test_a_list_page_costs_the_same_queries_with_more_rows(client, login, case, people):
    """Issue 15, pages that do not grow: the same number of queries for one row or three (a site has
    two units, so the batches go to two sites)."""
    case.make("MAD")
    login("qa")
    urls = [f"{case.url}?per_page=200", f"{case.url}?per_page=200&export=csv"]
    few = [_queries(client, u) for u in urls]
    for code in ("LIS", "LIS"):
        case.make(code)
    many = [_queries(client, u) for u in urls]
    assert many <= few, f"{case.name}: {few} queries with fewer rows, {many} with more"


@pytest.mark.parametrize("url", ["/release/", "/planning/", "/quality/notifications/", "/audit/reviews/"])
@pytest.mark.parametrize(("query", "field"), [("sort=nonsense", "sort"), ("per_page=0", "per_page"),
                                              ("page=abc", "page"), ("status=zz", "status")])
def test_the_other_lists_refuse_hostile_parameters_by_name(client, login, url, query, field):
    """Issue 15, hostile input, on the lists without rows made here: a 400 naming the field (a
    filter a list does not have is ignored, as everywhere)."""
    login("qa")
    response = client.get(f"{url}?{query}")
    if field == "status" and url in ("/release/", "/quality/notifications/", "/audit/reviews/"):
        assert response.status_code == 200  # these lists have no status filter
        return
    assert response.status_code == 400 and field in _body(response)
    assert client.get(f"{url}?page=-1").status_code == 200


def test_the_release_queue_is_paged_searched_filtered_exported_and_scoped(client, login, people):
    """Issue 15 on the release queue: total and page 2, search, the site filter, sort, the CSV and
    its filter, the API's filters; a Madrid QC analyst sees Madrid's batches only (P11-10g)."""
    from tests.release.helpers import completed_batch

    mad, lis = completed_batch("MAD").reference, completed_batch("LIS").reference
    login("qa")
    first = _body(client.get("/release/?per_page=1&sort=reference"))
    assert _total(first) == (1, 1, 2) and sorted([mad, lis])[0] in first
    assert _total(_body(client.get("/release/?per_page=1&sort=reference&page=2")))[:2] == (2, 2)
    down = _body(client.get("/release/?sort=-reference"))
    assert down.index(max(mad, lis)) < down.index(min(mad, lis))
    hit = _body(client.get("/release/", {"q": mad}))
    assert mad in hit and lis not in hit
    assert "Nothing matches" in _body(client.get("/release/", {"q": "no-such-zz"}))
    assert [r["batch"] for r in _csv(client, "/release/?export=csv&site=LIS")] == [lis]
    assert [r["batch"] for r in client.get("/api/release/queue/", {"site": "LIS"}).json()] == [lis]
    assert client.get("/api/release/queue/", {"sort": "zz"}).status_code == 400
    login("qc.mad")
    page = _body(client.get("/release/"))
    assert mad in page and lis not in page and _total(page)[2] == 1
    assert [r["batch"] for r in _csv(client, "/release/?export=csv")] == [mad]


def test_the_signatures_api_filters_sorts_and_keeps_to_the_sites(client, login, people):
    """Issue 15 on the signatures list (API): filter by signer, search, sort both ways, an unknown
    sort key refused by name; a Madrid manager sees Madrid's signatures only (P11-10g)."""
    for code in ("MAD", "LIS"):
        qc = quality_h.user(f"qc.{code.lower()}")
        lot = MaterialLot.objects.get(lot_number=_lot(code))
        manufacturing.lot_decide(actor=qc, lot=lot, decision="released", reason="CoA checked",
                                 credentials=SigningCredentials(username=qc.username, password=PASSWORD))
    login("qa")
    mine = client.get("/api/signatures/", {"signer": "qc.lis", "limit": 1000}).json()["results"]
    assert mine and {s["signer_username"] for s in mine} == {"qc.lis"}
    found = client.get("/api/signatures/", {"q": "LOT", "sort": "signed"}).json()["results"]
    assert [s["signed_at"] for s in found] == sorted(s["signed_at"] for s in found) and len(found) >= 2
    down = client.get("/api/signatures/", {"q": "LOT", "sort": "-signed"}).json()["results"]
    assert [s["id"] for s in down] == [s["id"] for s in reversed(found)]
    refused = client.get("/api/signatures/", {"sort": "zz"})
    assert refused.status_code == 400 and "sort" in refused.json()
    login("manager.mad")
    seen = client.get("/api/signatures/", {"limit": 1000}).json()["results"]
    assert seen and all(s["chain"].split("/")[0] == "MAD" for s in seen)


# --- the sites and the tokens: lists whose rows are not made per site ------------------------------------


def test_the_sites_list_is_paged_searched_filtered_sorted_exported_and_scoped(client, login, people):
    """Issue 15 on the network page: total and page 2, search, the status and kind filters, sort both
    ways, the CSV and its filter, the API's filters; a Madrid operator sees Madrid only (P11-10g)."""
    login("qa")
    every = _body(client.get("/network/?per_page=200"))
    total = _total(every)[2]
    assert total >= 3 and _total(_body(client.get("/network/?per_page=1&page=2")))[:2] == (2, 2)
    up = _body(client.get("/network/?sort=code&per_page=200"))
    down = _body(client.get("/network/?sort=-code&per_page=200"))
    assert (up.index(">LIS<") < up.index(">MAD<")) and (down.index(">MAD<") < down.index(">LIS<"))
    hit = _body(client.get("/network/", {"q": "Lisbon"}))
    assert ">LIS<" in hit and ">MAD<" not in hit and _total(hit)[2] == 1
    control = _body(client.get("/network/", {"kind": "control"}))
    assert _total(control)[2] == 1 and ">MAD<" not in control
    rows = _csv(client, "/network/?export=csv")
    assert {r["code"] for r in rows} >= {"MAD", "LIS"} and len(rows) == total
    assert [r["code"] for r in _csv(client, "/network/?export=csv&site=LIS")] == ["LIS"]
    assert [r["code"] for r in client.get("/api/sites/", {"q": "Lisbon"}).json()["results"]] == ["LIS"]
    assert client.get("/api/sites/", {"sort": "zz"}).status_code == 400
    for query, field in (("sort=zz", "sort"), ("status=zz", "status"), ("per_page=0", "per_page")):
        refused = client.get(f"/network/?{query}")
        assert refused.status_code == 400 and field in _body(refused)
    login("operator.mad")
    mine = _body(client.get("/network/"))
    assert ">MAD<" in mine and ">LIS<" not in mine and _total(mine)[2] == 1
    assert [r["code"] for r in _csv(client, "/network/?export=csv")] == ["MAD"]


def test_the_sites_list_costs_the_same_queries_with_more_units(client, login, people):
    """Issue 15, pages that do not grow: usable units are counted for the page in one query."""
    login("qa")
    few = _queries(client, "/network/?per_page=200")
    for code in ("MAD", "LIS", "LIS"):
        _unit(code)
    assert _queries(client, "/network/?per_page=200") <= few


def _token(username: str, name: str) -> Any:
    token, _ = accounts.token_issue(actor=quality_h.user("qa"), user=quality_h.user(username), name=name,
                                    reason="list test")
    return token


def test_the_tokens_list_is_paged_searched_filtered_sorted_exported_and_kept_to_the_owner(client, login, people):
    """Issue 15 on the tokens page: total and pages, search, the state filter, sort both ways, the CSV
    (which never holds a key) and the API's filters; a person sees only their own tokens."""
    mine = _token("operator.mad", "=infusion pump")
    other = _token("operator.lis", "lims bridge")
    revoked = _token("operator.lis", "old scanner")
    accounts.token_revoke(actor=quality_h.user("qa"), token=revoked, reason="lost")
    login("qa")
    assert _total(_body(client.get("/tokens/?per_page=1&sort=name")))[2] >= 3
    page = _body(client.get("/tokens/?per_page=1&sort=name&user=operator.lis&page=2"))
    assert _total(page) == (2, 2, 2) and "old scanner" in page
    up, down = _body(client.get("/tokens/?sort=name")), _body(client.get("/tokens/?sort=-name"))
    assert up.index("lims bridge") < up.index("old scanner") and down.index("old scanner") < down.index("lims bridge")
    hit = _body(client.get("/tokens/", {"q": "lims"}))
    assert "lims bridge" in hit and "old scanner" not in hit and _total(hit)[2] == 1
    assert "old scanner" in _body(client.get("/tokens/", {"state": "revoked"}))
    assert "old scanner" not in _body(client.get("/tokens/", {"state": "in_use"}))
    rows = _csv(client, "/tokens/?export=csv&user=operator.lis")
    assert sorted(r["name"] for r in rows) == ["lims bridge", "old scanner"]
    assert {r["state"] for r in rows} == {"in use", "revoked"} and "key_hash" not in rows[0]
    assert _csv(client, "/tokens/?export=csv&q=infusion")[0]["name"] == csv_cell(mine.name)
    api = client.get("/api/tokens/", {"state": "revoked"}).json()["results"]
    assert [t["id"] for t in api] == [revoked.pk]
    refused = client.get("/tokens/?state=zz")
    assert refused.status_code == 400 and "state" in _body(refused)
    login("operator.mad")
    own = _body(client.get("/tokens/"))
    assert mine.prefix in own and other.prefix not in own and _total(own)[2] == 1
    assert [r["name"] for r in _csv(client, "/tokens/?export=csv")] == [csv_cell(mine.name)]


# --- dates in the filters ---------------------------------------------------------------------------


def test_a_date_filter_takes_an_iso_date_and_refuses_a_locale_one_by_name(client, login, people):
    """Issue 15: the list filters write dates as POCare does (YYYY-MM-DD, a text box with the pattern
    and a placeholder, not the browser's locale-formatted picker); ``05/12/2025`` is ambiguous and is
    a 400 naming the filter and the format, on the page, in the CSV and in the API."""
    reference = _batch("MAD")
    login("qa")
    page = _body(client.get("/manufacturing/"))
    field = re.search(r'<input[^>]*name="started_from"[^>]*>', page)
    assert field and 'type="text"' in field[0] and 'placeholder="YYYY-MM-DD"' in field[0] and "pattern=" in field[0]
    today = timezone.now().date()
    hit = _body(client.get("/manufacturing/", {"started_from": today.isoformat()}))
    assert reference in hit
    later = (today + dt.timedelta(days=1)).isoformat()
    assert reference not in _body(client.get("/manufacturing/", {"started_from": later}))
    for bad in ("05/12/2025", "12.05.2025", "2025-13-01", "yesterday"):
        refused = client.get("/manufacturing/", {"started_from": bad})
        assert refused.status_code == 400, bad
        assert "started_from" in _body(refused) and "YYYY-MM-DD" in _body(refused)
    assert client.get("/manufacturing/", {"started_until": "05/12/2025", "export": "csv"}).status_code == 400
    api = client.get("/api/batches/", {"started_from": "05/12/2025"})
    assert api.status_code == 400 and "started_from" in api.json()
