"""Training over the API: the gate devices ask, records, qualifications and the matrix — scoped,
and 4xx for bad parameters (P11-10i, P11-10g, P11-10h)."""

from __future__ import annotations

import pytest

from pocare.accounts.services import token_issue
from tests.training.helpers import make_versions, qualify_operator, train, user

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer():
    def _bearer(username: str) -> dict[str, str]:
        _, key = token_issue(actor=None, user=user(username), name="device", reason="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return _bearer


@pytest.fixture
def ready():
    versions = make_versions()
    qualify_operator("operator.mad", versions.v1)
    return versions


def test_a_device_asks_the_gate_and_gets_allowed_or_the_reasons(client, bearer, ready):
    """P11-10h P11-10i: a device, acting as its operator, asks before a step and is told why not."""
    headers = bearer("operator.mad")
    query = {"person": "operator.mad", "step": "prodigy-setup", "site": "MAD", "version": ready.v1.pk}
    answer = client.get("/api/training/gate/", query, **headers).json()
    assert answer["allowed"] is True and answer["reasons"] == [] and answer["until"]
    by_id = client.get("/api/training/gate/", {**query, "person": user("operator.mad").pk}, **headers).json()
    assert by_id["allowed"] is True
    newer = client.get("/api/training/gate/", {**query, "version": ready.v2.pk,
                                                "step": "expansion-harvest-decision"}, **headers).json()
    assert newer["allowed"] is False and any("not the effective version at MAD" in r for r in newer["reasons"])
    verifying = client.get("/api/training/gate/", {**query, "person": "manager.mad", "verifying": "true"},
                           **bearer("manager.mad")).json()
    assert verifying["allowed"] is False and verifying["reasons"]


def test_the_gate_refuses_bad_parameters_with_a_400_naming_them(client, bearer, ready):
    """P11-10g: missing or wrong parameters are the caller's error, each named; nothing else is said."""
    headers = bearer("manager.mad")
    good = {"person": "operator.mad", "step": "prodigy-setup", "site": "MAD", "version": ready.v1.pk}
    assert client.get("/api/training/gate/", **headers).status_code == 200  # no question: what to ask
    cases = [
        ({"person": None}, "person"),
        ({"version": "abc"}, "version"),
        ({"version": "99999999"}, "version"),
        ({"person": "nobody"}, "person"),
        ({"person": "operator.lis"}, "person"),  # another site's person does not exist for this caller
        ({"site": "LIS"}, "site"),
        ({"at": "yesterday"}, "at"),
        ({"at": "0001-01-01T00:00:00Z"}, "at"),
        ({"verifying": "perhaps"}, "verifying"),
    ]
    for change, field in cases:
        query = {k: v for k, v in {**good, **change}.items() if v is not None}
        response = client.get("/api/training/gate/", query, **headers)
        assert response.status_code == 400, (change, response.content)
        assert field in response.json(), (change, response.json())
    assert client.get("/api/training/gate/", good, **bearer("physician.mad")).status_code == 403


def test_the_gate_at_a_past_moment(client, bearer, ready):
    """DI-ALCOA: "was it allowed then?" — before the product's site authorization, nothing was effective."""
    answer = client.get("/api/training/gate/", {"person": "operator.mad", "step": "prodigy-setup", "site": "MAD",
                                                "version": ready.v1.pk, "at": "2020-01-01T00:00:00Z"},
                        **bearer("qa")).json()
    assert answer["allowed"] is False and answer["at"].startswith("2020-01-01")


def test_records_are_scoped_and_carry_their_signatures(client, bearer):
    """P11-10g P11-50: a site's records only; each with signer, printed name, meaning, time and validity."""
    mad = train("operator.mad", qualification_code="aseptic-processing", title="Madrid gowning")
    lis = train("operator.lis", qualification_code="aseptic-processing", title="Lisbon gowning")
    listing = client.get("/api/training/records/?limit=1000", **bearer("manager.mad")).json()["results"]
    ids = {r["id"] for r in listing}
    assert mad.pk in ids and lis.pk not in ids
    assert client.get(f"/api/training/records/{lis.pk}/", **bearer("manager.mad")).status_code == 404
    detail = client.get(f"/api/training/records/{mad.pk}/", **bearer("qa")).json()
    assert [(s["signer_printed_name"], s["meaning"], s["valid"]) for s in detail["signatures"]] == [
        ("Lucía Navarro", "verified", True), ("Pablo Ortega", "performed", True)]
    filtered = client.get("/api/training/records/", {"trainee": "operator.lis", "kind": "course"},
                          **bearer("qa")).json()["results"]
    assert {r["trainee"] for r in filtered} == {"operator.lis"}
    assert client.get("/api/training/records/", {"kind": "nap"}, **bearer("qa")).status_code == 400
    assert client.get("/api/training/records/", **bearer("planner")).status_code == 403


def test_qualifications_and_the_matrix(client, bearer):
    """P11-10i: the matrix over the API, per site; an unknown or foreign site is a 400."""
    train("operator.mad", qualification_code="aseptic-processing")
    qualifications = client.get("/api/training/qualifications/", **bearer("operator.mad")).json()["results"]
    assert "aseptic-processing" in {q["code"] for q in qualifications}
    matrix = client.get("/api/training/matrix/", {"site": "MAD"}, **bearer("manager.mad")).json()
    row = next(r for r in matrix["rows"] if r["person"] == "operator.mad")
    assert row["cells"]["aseptic-processing"]["state"] in ("valid", "expiring")
    assert client.get("/api/training/matrix/", {"site": "LIS"}, **bearer("manager.mad")).status_code == 400
    assert client.get("/api/training/matrix/", {"at": "soon"}, **bearer("qa")).status_code == 400
    network = client.get("/api/training/matrix/", **bearer("qa")).json()
    assert network["site"] is None


def test_pages_and_lists_do_not_grow_a_query_per_record(client, login):
    """Query-count baseline: more training records cost no more queries on the lists and pages."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200, url
        return len(ctx.captured_queries)

    login("qa")
    pk = user("operator.mil").pk
    urls = ["/api/training/records/?limit=200", "/training/", "/training/?site=MIL", f"/training/people/{pk}/",
            "/api/training/matrix/"]
    train("operator.mil", qualification_code="aseptic-processing", title="first")
    few = [queries(u) for u in urls]
    for n in range(6):
        train("operator.mil", qualification_code="cell-counting", title=f"more {n}", sign=n % 2 == 0)
    many = [queries(u) for u in urls]
    assert all(m <= f for m, f in zip(many, few, strict=True)), list(zip(urls, few, many, strict=True))
