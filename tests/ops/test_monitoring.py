"""/health/, /metrics and the request logs (docs/operations.md, "Monitoring").

The checks run for real against the test database and a digest store of the test's own; a part is
broken the way it breaks in production (no anchor yet, a dropped trigger, a migration not applied,
a check that raises) and the endpoint must say so, and say nothing more to someone without the
monitoring token.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from pocare.core.monitoring import HEALTH_CHECKS, HealthCheck
from pocare.jobs.services import job_enqueue, worker_seen
from pocare.ledger import anchoring
from pocare.ledger.models import ChainHead, Event, site_chain
from pocare.ops.logs import JsonLineFormatter, RequestContextFilter
from pocare.trail.services import trail_verified
from tests.conftest import drop_triggers
from tests.ledger.helpers import own_digest_store

pytestmark = pytest.mark.django_db

TOKEN = "t" * 40
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def monitoring(tmp_path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    """The monitoring token, and a signing key and digest directory of the test's own (no digest yet)."""
    settings.POCARE_MONITOR_TOKEN = TOKEN
    settings.POCARE_MONITOR_NETWORKS = []
    return own_digest_store(tmp_path, settings)


def _checks(client) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    response = client.get("/health/", **AUTH)
    return response.status_code, response.json()


def test_health_says_ok_only_when_every_part_works_and_tells_details_only_to_the_monitor(client):
    """Without an anchor the trail is not protected: 503. Anyone sees the status alone; the token
    holder sees which check failed and why. Once anchored, 200 with every check ok."""
    anonymous = client.get("/health/")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "failing"}
    assert anonymous["Cache-Control"].startswith("max-age=0")
    status, body = _checks(client)
    assert status == 503 and body["status"] == "failing"
    assert list(body["checks"]) == ["database", "migrations", "digests", "triggers", "jobs"]
    assert not body["checks"]["digests"]["ok"] and "no signed digest" in body["checks"]["digests"]["summary"]
    assert all(body["checks"][name]["ok"] for name in ("database", "migrations", "triggers", "jobs"))

    anchoring.anchor()
    status, body = _checks(client)
    assert status == 200 and body["status"] == "ok", body
    assert 0 <= body["checks"]["digests"]["figures"]["latest_anchor_age_seconds"] < 60
    assert client.get("/health/").json() == {"status": "ok"}
    wrong = client.get("/health/", HTTP_AUTHORIZATION="Bearer " + "u" * 40)
    assert wrong.json() == {"status": "ok"}  # a wrong token reads as nobody


def test_a_stale_anchor_a_dropped_trigger_and_an_unapplied_migration_each_fail_their_check(client, settings):
    anchoring.anchor()
    settings.POCARE_ANCHOR_MAX_AGE_MINUTES = 0
    status, body = _checks(client)
    assert status == 503 and "minutes old, more than 0" in body["checks"]["digests"]["summary"]
    settings.POCARE_ANCHOR_MAX_AGE_MINUTES = 150

    drop_triggers()
    status, body = _checks(client)
    assert status == 503 and "missing" in body["checks"]["triggers"]["summary"]
    assert body["checks"]["triggers"]["figures"]["missing"] == 6

    recorder = MigrationRecorder(connection)
    app, name = max(m for m in recorder.applied_migrations() if m[0] == "ledger")
    recorder.record_unapplied(app, name)
    status, body = _checks(client)
    assert not body["checks"]["migrations"]["ok"] and f"{app}.{name}" in body["checks"]["migrations"]["summary"]
    assert body["checks"]["migrations"]["figures"]["unapplied"] == 1


def test_the_load_balancer_probe_asks_only_what_takes_a_server_out_and_a_wrong_name_is_refused(client):
    """No anchor yet, yet the database and migrations are fine: the probe a load balancer uses
    answers 200. An unknown check name is a 400 naming the parameter and the names allowed."""
    before = Event.objects.count()
    probe = client.get("/health/?only=database,migrations", **AUTH)
    assert probe.status_code == 200 and list(probe.json()["checks"]) == ["database", "migrations"]
    refused = client.get("/health/?only=database,<script>")
    assert refused.status_code == 400
    message = refused.json()["only"][0]
    assert "Unknown check" in message and "database, migrations, digests, triggers" in message
    assert client.get("/health/?only=").status_code == 400
    assert client.post("/health/").status_code == 405
    assert Event.objects.count() == before  # GET never writes


def test_a_check_that_raises_is_one_failing_line_without_its_message(client):
    """A broken part never hides the others, and a driver's message (a host, a user) never shows."""
    def boom_check() -> HealthCheck:
        raise RuntimeError("connection to db.hospital.example as pocare_admin failed")

    HEALTH_CHECKS.register(boom_check)
    try:
        status, body = _checks(client)
    finally:
        HEALTH_CHECKS.unregister(boom_check)
    assert status == 503 and body["checks"]["boom"] == {"ok": False, "summary": "the check failed: RuntimeError",
                                                         "figures": {}}
    assert body["checks"]["database"]["ok"]
    assert "hospital" not in json.dumps(body)


def test_health_detail_for_a_monitoring_address(client, settings):
    settings.POCARE_MONITOR_NETWORKS = [ipaddress.ip_network("10.0.5.0/24")]
    assert "checks" in client.get("/health/", REMOTE_ADDR="10.0.5.7").json()
    assert "checks" not in client.get("/health/", REMOTE_ADDR="10.0.6.7").json()


def _scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_are_for_the_monitor_and_parse_as_prometheus_text(client, people):
    """Request latency by route name (never the path), ledger events from the chain heads, the latest
    recorded verification, and every health check with its figures — a job queue's counts included."""
    assert client.get("/metrics").status_code == 403
    client.get("/health/")
    client.get("/manufacturing/batches/MAD-NOPE-1/")  # a path that names a batch: its route is the label
    metrics = _scrape(client)
    durations = metrics["pocare_http_request_duration_seconds_count"]
    assert durations[(("method", "GET"), ("route", "health"), ("status", "5xx"))] >= 1
    assert all("MAD-NOPE" not in value for labels in durations for _, value in labels)
    assert durations[(("method", "GET"), ("route", "manufacturing:batch"), ("status", "3xx"))] >= 1

    totals: dict[str, int] = {}
    for chain, seq in ChainHead.objects.values_list("chain", "seq"):
        totals[site_chain(chain)] = totals.get(site_chain(chain), 0) + seq
    assert {labels[0][1]: value for labels, value in metrics["pocare_ledger_events_total"].items()} == totals
    assert metrics["pocare_ledger_last_verify_ok"][()] == -1
    assert metrics["pocare_health_check_ok"][(("check", "digests"),)] == 0

    trail_verified(actor=people["qa"], events=10, chains=1, broken=[], invalid_signatures=[])

    for n in range(3):  # due now, and no worker has announced itself: the queue's check fails
        job_enqueue(task="pocare.jobs.builtin.noop", kwargs={"n": n})
    assert _scrape(client)["pocare_health_check_ok"][(("check", "jobs"),)] == 0
    worker_seen(name="metrics-test-worker", started_at=timezone.now())
    metrics = _scrape(client)
    assert metrics["pocare_jobs_queued"][()] == 3 and metrics["pocare_health_check_ok"][(("check", "jobs"),)] == 1
    assert metrics["pocare_jobs_worker_seen"][()] == 1


def test_a_health_check_name_is_a_metric_name():
    with pytest.raises(ValueError, match="lower-case words"):
        HealthCheck("Job Queue", True)
    with pytest.raises(ValueError, match="lower-case words"):
        HealthCheck("jobs", True, figures={"oldest-age": 1})


@pytest.fixture
def log_lines(settings):  # type: ignore[no-untyped-def]
    """What the request logger and Django's request logger write, formatted as settings.LOGGING says."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    json_format = settings.LOGGING["formatters"]["json"]
    assert json_format["()"] == "pocare.ops.logs.JsonLineFormatter"
    handler.setFormatter(JsonLineFormatter(json_format["fmt"], timestamp=json_format["timestamp"],
                                           rename_fields=json_format["rename_fields"]))
    handler.addFilter(RequestContextFilter())
    loggers = [logging.getLogger("pocare.requests"), logging.getLogger("django.request")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def test_each_request_is_one_json_line_with_its_id_person_scope_route_status_and_time(client, login, log_lines):
    """DI-ALCOA: the line carries the X-Request-ID the response carries (and the ledger events it wrote), the
    username (never the printed name), the site scope, the route name; never the path or the query."""
    login("qa")
    session = client.session
    session["pocare.scope"] = "MAD"
    session.save()
    response = client.get("/manufacturing/?q=Alice+Example")
    assert response.status_code == 200
    rid = response["X-Request-ID"]
    line = next(entry for entry in log_lines() if entry["request_id"] == rid and entry["logger"] == "pocare.requests")
    assert line["user"] == "qa" and line["scope"] == "MAD" and line["route"] == "manufacturing:batches"
    assert line["method"] == "GET" and line["status"] == 200 and line["duration_ms"] > 0 and line["level"] == "INFO"
    assert line["time"].endswith("+00:00")
    assert "Alice" not in json.dumps(log_lines()) and "/manufacturing/" not in json.dumps(line)

    denied = client.get("/metrics")  # Django logs the 403 itself, after the middleware: the id is still there
    django_line = next(e for e in log_lines() if e["logger"] == "django.request" and e["status_code"] == 403)
    assert django_line["request_id"] == denied["X-Request-ID"] and django_line["user"] == "qa"
    assert "request" not in django_line  # Django's request object prints the full path and query
    missing = client.get("/password/set/MTIz/not-a-real-token-but-a-secret-one/")
    assert missing.status_code in (400, 404)
    logged = json.dumps([e for e in log_lines() if e["request_id"] == missing["X-Request-ID"]])
    assert "secret-one" not in logged and "accounts:password_set" in logged  # the route, not the token
