"""The REST API: token and session auth, scoping, exports as ledger events, bad input as 4xx."""

from __future__ import annotations

import json

import pytest

from pocare.accounts.services import token_issue
from pocare.jobs.models import Job
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import Event
from tests.conftest import PASSWORD
from tests.jobs.run import download, job_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(people):
    def _bearer(username: str) -> dict[str, str]:
        _, key = token_issue(actor=None, user=people[username], name="test client", reason="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    return _bearer


def test_the_schema_is_served_and_documents_bearer_auth(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "/api/audit/events/" in schema["paths"]


def test_machine_clients_authenticate_with_a_bearer_token(client, bearer):
    """P11-10h: a device is identified by its own token, acting as one named user."""
    me = client.get("/api/me/", **bearer("operator.mad")).json()
    assert me["user"]["username"] == "operator.mad" and me["network_wide"] is False


def test_bad_and_revoked_tokens_are_refused(client, bearer, people):
    """P11-300: deauthorised credentials stop working at once."""
    assert client.get("/api/me/", HTTP_AUTHORIZATION="Bearer pct_nonsense").status_code == 401
    assert client.get("/api/me/", HTTP_AUTHORIZATION="Bearer a b c").status_code == 401
    headers = bearer("operator.mad")
    token_id = people["operator.mad"].api_tokens.get().pk
    qa = bearer("qa")
    response = client.post(f"/api/tokens/{token_id}/revoke/", {"reason": "device retired"},
                           content_type="application/json", **qa)
    assert response.status_code == 200 and response.json()["revoked_at"]
    assert client.get("/api/me/", **headers).status_code == 401


def test_site_people_see_only_their_sites_events(client, bearer):
    """P11-10g: scoping is enforced in the API, not only in templates."""
    events = client.get("/api/audit/events/?limit=1000", **bearer("manager.mad")).json()["results"]
    assert events and {e["chain"] for e in events} == {"MAD"}
    network = client.get("/api/audit/events/?limit=1000", **bearer("qa")).json()["results"]
    assert {"MAD", "LIS", "NETWORK", "CTRL"} <= {e["chain"] for e in network}


def test_filters_narrow_the_trail(client, bearer, people):
    """A11-9: the audit trail can be reviewed by object, user, site, time and event type."""
    qa = bearer("qa")
    op = people["operator.lis"]
    rows = client.get(f"/api/audit/events/?object_type=accounts.User&object_id={op.pk}", **qa).json()["results"]
    assert rows and all(r["object_id"] == str(op.pk) for r in rows)
    rows = client.get("/api/audit/events/?chain=LIS&event_type=accounts.role_granted", **qa).json()["results"]
    assert len(rows) == 5
    rows = client.get("/api/audit/events/?user=cli:token&after=2000-01-01T00:00:00Z", **qa).json()["results"]
    assert rows and all(r["actor_username"] == "cli:token" for r in rows)
    assert client.get("/api/audit/events/?before=2000-01-01T00:00:00Z", **qa).json()["count"] == 0


@pytest.mark.parametrize("query", ["event_type=nope", "after=yesterday", "limit=-5&offset=x"])
def test_malformed_filters_get_a_400_naming_the_field(client, bearer, query):
    """Bad input: a 4xx naming the problem, never a 500, nothing changed."""
    before = Event.objects.count()
    response = client.get(f"/api/audit/events/?{query}", **bearer("qa"))
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert query.split("=")[0] in response.json()
    assert Event.objects.count() == before + 1  # only the token issue


def test_an_export_is_itself_an_audit_event(client, bearer):
    """P11-10b A11-9: exports are human- and machine-readable copies, and their making is recorded."""
    qa = bearer("qa")
    body = client.post("/api/audit/export/?format=json&chain=MAD", **qa).json()
    assert body["events"] and {e["chain"] for e in body["events"]} == {"MAD"}
    export = Event.objects.get(chain="NETWORK", seq=int(body["export_event"].split("#")[1]))
    assert export.event_type == LedgerEvent.EXPORTED and export.new["events"] == len(body["events"])
    csv_body = client.post("/api/audit/export/?format=csv&chain=MAD", **qa).content.decode()
    assert csv_body.splitlines()[0].startswith("id,chain,seq,occurred_at")


def test_web_exports_are_recorded_too(client, login):
    """P11-10b A11-9: the browser's CSV/JSON export is a ledger event with the filter used."""
    login("inspector")
    asked = client.post("/audit/export.json?chain=LIS")
    got = download(client, asked)  # a job makes the file; its page offers it
    assert got["Content-Disposition"].startswith('attachment; filename="pocare-audit-')
    body = json.loads(got.content_bytes)
    event = Event.objects.filter(event_type=LedgerEvent.EXPORTED).latest("id")
    assert event.actor_username == "inspector" and event.new["filters"] == {"chain": "LIS"}
    assert body["export_event"] == event.label == got["X-POCare-Export-Event"]
    assert body["events"] and {e["chain"] for e in body["events"]} == {"LIS"}
    csv_got = download(client, client.post("/audit/export.csv?chain=LIS"))
    assert csv_got.content_bytes.decode().splitlines()[0].startswith("id,chain,seq,occurred_at")
    jobs = Job.objects.count()
    bad = client.post("/audit/export.csv?chain=LIS&after=yesterday")
    assert bad.status_code == 400 and "after" in bad.content.decode() and Job.objects.count() == jobs
    client.logout()
    login("manager.lis")  # another person at the exported site: the inspector's export is not theirs
    job = job_of(asked)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/file/").status_code == 404


def test_signing_a_review_over_the_api_needs_both_components(client, bearer):
    """P11-200: a token session is not a continuous signing session: user id and password every time."""
    headers = bearer("manager.mad")
    body = {"chain": "MAD", "comment": "Weekly review", "password": PASSWORD}
    assert client.post("/api/audit/reviews/", body, content_type="application/json", **headers).status_code == 403
    body["username"] = "manager.mad"
    response = client.post("/api/audit/reviews/", body, content_type="application/json", **headers)
    assert response.status_code == 201 and response.json()["chain"] == "MAD"


def test_a_site_person_cannot_review_another_sites_chain(client, bearer):
    body = {"chain": "LIS", "comment": "x", "username": "manager.mad", "password": PASSWORD}
    response = client.post("/api/audit/reviews/", body, content_type="application/json", **bearer("manager.mad"))
    assert response.status_code == 403


def test_verify_over_the_api_reports_each_chain(client, bearer):
    """P11-10e: verification is available to inspectors through the API, as a job: a POST queues it
    (202), the job's result is the report, and the run is recorded."""
    from tests.jobs.run import run_queued_jobs

    inspector = bearer("inspector")
    assert client.get("/api/audit/verify/", **inspector).status_code == 405  # running it is recorded: a POST
    queued = client.post("/api/audit/verify/", **inspector)
    assert queued.status_code == 202 and queued["Location"] == queued.json()["url"]
    job = job_of(queued)
    assert run_queued_jobs() == 1
    followed = client.get(queued.json()["url"], **inspector).json()
    assert followed["status"] == "done"
    report = followed["result"]
    assert report["ok"] is True and report["events"] > 0
    assert {c["chain"] for c in report["chains"]} >= {"CTRL", "MAD", "NETWORK"}
    chain, seq = report["event"].rsplit("#", 1)
    recorded = Event.objects.get(chain=chain, seq=int(seq))
    assert recorded.event_type == LedgerEvent.VERIFIED and recorded.actor_username == "inspector"
    assert job.pk == followed["id"]


@pytest.mark.parametrize("payload", [
    {}, {"chain": "MAD"}, {"chain": "x" * 100, "comment": "c", "password": "p"},
    {"chain": "NOPE", "comment": "c", "username": "qa", "password": PASSWORD},
])
def test_malformed_review_requests_are_4xx_and_change_nothing(client, bearer, payload):
    qa = bearer("qa")
    before = Event.objects.count()
    response = client.post("/api/audit/reviews/", payload, content_type="application/json", **qa)
    assert 400 <= response.status_code < 500
    assert Event.objects.count() == before


def test_inspectors_write_nothing_through_the_api(client, bearer):
    """P11-10g A11-IAM: inspector access is read-only."""
    headers = bearer("inspector")
    response = client.post("/api/tokens/", {"user": "inspector", "name": "x", "reason": "x"},
                           content_type="application/json", **headers)
    assert response.status_code == 403
