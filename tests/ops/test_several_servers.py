"""Two `pocare serve` processes on one database drive one batch (issue 16, "Several servers").

Each server has a local directory of its own that the other never sees; what they share is what
production shares: the database (records, sessions, the cache), the files directory and the digest
store. A person signs in on one server and their session works on the other; a step recorded on
server A is verified on server B by a second person; B offers the operator's next signature with the
password alone, because the continuous-session state that A wrote lives in the shared session.
A job worker on the same database takes the trail's anchoring job, and both servers' health
checks see it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from pocare.accounts.services import password_set
from pocare.jobs.models import Job, JobStatus
from pocare.jobs.services import job_enqueue
from pocare.ledger import anchoring
from pocare.ledger.models import Event
from pocare.manufacturing.models import StepExecution
from tests.manufacturing import helpers as h
from tests.ops.processes import MONITOR_TOKEN, Browser, Installation, free_port

SERVER_PASSWORD = "two servers share one database 2026"


@pytest.fixture
def installation(tx_db, tmp_path: Path) -> Iterator[Installation]:  # type: ignore[no-untyped-def]
    """Real `pocare` processes on the suite's committed test database, stopped before it is flushed."""
    inst = Installation(tmp_path)
    try:
        yield inst
    finally:
        inst.stop_all()


def _server_passwords(*usernames: str) -> None:
    """The suite hashes passwords with MD5 for speed, which the servers (Argon2, PBKDF2) do not read:
    these people set a password through the accounts service with the production hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.Argon2PasswordHasher"]):
        for username in usernames:
            password_set(user=h.user(username), new_password=SERVER_PASSWORD)


def _metrics(browser: Browser, server) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:  # type: ignore[no-untyped-def]
    response = browser.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {MONITOR_TOKEN}"})
    assert response.status == 200, response.text[:300]
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_two_servers_on_one_database_drive_one_batch_with_one_session(installation):
    """P11-200 DI-ALCOA: a session made on server A works on server B (sessions live in the database);
    a step recorded on A is verified on B by a second person and seen on A; the operator's next step is
    offered on B with the password alone, the continuous session begun on A; the digests verify; each
    server is healthy, counts its own requests, and reports the same ledger figures; a worker on the
    same database runs the anchoring job and both servers' health checks see the queue served."""
    batch = h.started_batch("MAD")
    _server_passwords("operator.mad", "manager.mad")
    anchoring.key_init(installation.shared / "anchor" / "ed25519.pem")
    a, b = installation.serve("server-a"), installation.serve("server-b")

    operator, manager = Browser(), Browser()
    assert operator.log_in(a, "operator.mad", SERVER_PASSWORD).status == 302
    first_page = operator.get(f"{b.url}/manufacturing/batches/{batch.reference}/steps/receipt-identity/").text
    assert 'name="username"' in first_page  # no signature yet in this session: both components asked
    session_from_a = operator.cookie("sessionid")
    assert session_from_a
    detail_on_b = operator.get(f"{b.url}/api/batches/{batch.reference}/")
    assert detail_on_b.status == 200, detail_on_b.text[:300]  # the session made on A, read by B

    step = h.services.step_definition(batch, "receipt-identity")
    recorded = operator.post(f"{a.url}/api/batches/{batch.reference}/steps/receipt-identity/record/",
                             data={"values": h.good_values(step), "username": "operator.mad",
                                   "password": SERVER_PASSWORD})
    assert recorded.status == 201, recorded.text[:500]
    assert recorded.json()["status"] == "awaiting_verification"

    assert manager.log_in(b, "manager.mad", SERVER_PASSWORD).status == 302
    verified = manager.post(f"{b.url}/api/batches/{batch.reference}/steps/receipt-identity/verify/",
                            data={"username": "manager.mad", "password": SERVER_PASSWORD, "comment": "seen on B"})
    assert verified.status in (200, 201), verified.text[:500]
    on_a = manager.get(f"{a.url}/api/batches/{batch.reference}/").json()
    assert on_a["steps"][0]["step_id"] == "receipt-identity" and on_a["steps"][0]["status"] == "complete", on_a["steps"]

    # The operator's continuous session (P11-200), begun by the signature on A, is in the shared session:
    # B's form for the next step asks for the password alone.
    next_page = operator.get(f"{b.url}/manufacturing/batches/{batch.reference}/steps/apheresis-count/").text
    assert 'name="password"' in next_page and 'name="username"' not in next_page
    count = h.services.step_definition(batch, "apheresis-count")
    recorded_on_b = operator.post(f"{b.url}/api/batches/{batch.reference}/steps/apheresis-count/record/",
                                  data={"values": h.good_values(count), "materials": h.material_lots(batch, count),
                                        "username": "operator.mad", "password": SERVER_PASSWORD})
    assert recorded_on_b.status == 201, recorded_on_b.text[:500]
    assert operator.cookie("sessionid") == session_from_a  # one session throughout, on both servers

    steps = dict(StepExecution.objects.filter(batch=batch).values_list("step_id", "status"))
    assert steps == {"receipt-identity": "complete", "apheresis-count": "complete"}, steps
    by_request = {e.request_id: e for e in Event.objects.filter(chain__startswith="MAD").order_by("-id")[:30]}
    for server in (a, b):
        logged = [line for line in server.log_lines() if line.get("logger") == "pocare.requests"]
        writes = [line for line in logged if line["method"] == "POST" and line["route"].startswith("api-step")]
        assert writes and all(line["request_id"] in by_request for line in writes), writes
        assert {line["user"] for line in writes} <= {"operator.mad", "manager.mad"}

    # A worker on the same database takes the trail's anchoring job (the hourly one, queued now).
    job = job_enqueue(task="pocare.jobs.builtin.trail_anchor", label="anchor after two servers")
    worker = installation.start("worker", "worker", POCARE_JOBS_SCHEDULE="0")
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).status in (JobStatus.QUEUED, JobStatus.RUNNING) and time.monotonic() < deadline:
        assert worker.popen.poll() is None, worker.log.read_text()[-2000:]
        time.sleep(0.2)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, (job.status, job.error, worker.log.read_text()[-2000:])
    for server in (a, b):
        health = manager.get(f"{server.url}/health/", headers={"Authorization": f"Bearer {MONITOR_TOKEN}"})
        assert health.status == 200, health.text
        checks = health.json()["checks"]
        assert set(checks) == {"database", "migrations", "digests", "triggers", "jobs"}
        assert checks["jobs"]["figures"]["worker_seen"] == 1 and checks["jobs"]["figures"]["queued"] == 0
    metrics_a, metrics_b = _metrics(manager, a), _metrics(manager, b)
    events = metrics_a["pocare_ledger_events_total"]
    assert events == metrics_b["pocare_ledger_events_total"] and events[(("chain", "MAD"),)] >= 3
    record_a = metrics_a["pocare_http_request_duration_seconds_count"]
    record_b = metrics_b["pocare_http_request_duration_seconds_count"]
    key = (("method", "POST"), ("route", "api-step-record"), ("status", "2xx"))
    assert record_a[key] == 1 and record_b[key] == 1  # each server counts its own requests


def test_a_server_whose_database_is_gone_answers_503_naming_the_database_and_nothing_more(tmp_path):
    """The probe still answers when the database does not (no page needs it to say so): 503, the
    failing checks named for the monitor, the driver's message (host, user) nowhere."""
    inst = Installation(tmp_path)
    try:
        server = inst.serve("server", DATABASE_URL=f"postgres://pocare_nobody@127.0.0.1:{free_port()}/gone")
        anonymous = Browser().get(f"{server.url}/health/")
        assert anonymous.status == 503 and anonymous.json() == {"status": "failing"}
        detail = Browser().get(f"{server.url}/health/", headers={"Authorization": f"Bearer {MONITOR_TOKEN}"}).json()
        assert detail["checks"]["database"] == {"ok": False, "summary": "the check failed: OperationalError",
                                                "figures": {}}
        assert "pocare_nobody" not in json.dumps(detail) and "127.0.0.1" not in json.dumps(detail)
    finally:
        inst.stop_all()
