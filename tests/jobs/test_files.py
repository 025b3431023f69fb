"""Jobs that make a file (pocare.jobs.files, docs/jobs.md *Files*): stored under an unguessable name
with its hash, served only to whoever may see the job, each download a ledger event; the job's page
follows the job and writes nothing."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import storages
from django.db import transaction

from pocare.jobs import services
from pocare.jobs.events import JobEvent
from pocare.jobs.models import JobStatus
from pocare.ledger.models import NETWORK_CHAIN, Event
from tests.jobs.run import run_queued_jobs, stored_bytes

pytestmark = pytest.mark.django_db
MAKE = "tests.jobs.tasks.make_file"


def _queued(actor, **kw):  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return services.job_enqueue(task=MAKE, kwargs={"text": "a\nb\n", **kw}, actor=actor)


def test_a_file_job_keeps_its_file_with_name_type_size_and_hash(people):
    """The task's file goes to the storage under jobs/<id>/<random>/<name>; the row keeps what it is."""
    job = _queued(people["qa"], name="../../etc/passwd")
    assert run_queued_jobs() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    data = stored_bytes(job)
    assert data == b"a\nb\n" and job.file_size == 4 and job.file_sha256 == hashlib.sha256(data).hexdigest()
    assert job.file_content_type == "text/plain; charset=utf-8" and job.file_download_name == "etc-passwd"
    prefix, job_id, secret, name = job.file_name.split("/")
    assert (prefix, job_id, name) == ("jobs", str(job.pk), "etc-passwd") and len(secret) >= 32
    assert storages["default"].exists(job.file_name)
    assert job.result == {"lines": 2, "file": "etc-passwd", "bytes": 4, "sha256": job.file_sha256}


def test_the_starter_downloads_it_by_post_each_download_recorded_and_get_writes_nothing(client, login, people):
    """P11-10b P11-10g: the job's page offers the file to the person who asked; the download is a
    POST recorded in the trail (who, which file, its hash); a GET of the page or the file writes
    nothing; another person — at another site, or a site manager — finds no such job (404)."""
    job = _queued(people["manager.mad"])
    login("manager.mad")
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page and "Queued" in page and "job-download" not in page
    run_queued_jobs()
    before = Event.objects.count()
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "hx-trigger" not in page and f'action="/jobs/{job.pk}/file/"' in page
    assert client.get(f"/jobs/{job.pk}/file/").status_code == 405
    assert Event.objects.count() == before  # reading writes nothing
    got = client.post(f"/jobs/{job.pk}/file/")
    assert got.status_code == 200 and b"".join(got.streaming_content) == b"a\nb\n"
    assert got["Content-Disposition"] == 'attachment; filename="report.txt"'
    event = Event.objects.get(event_type=JobEvent.FILE_DOWNLOADED)
    job.refresh_from_db()
    assert event.actor.username == "manager.mad" and event.chain == NETWORK_CHAIN
    assert event.new == {"task": MAKE, "file": "report.txt", "sha256": job.file_sha256, "bytes": 4}
    assert got["X-POCare-Download-Event"] == event.label
    client.logout()
    for other in ("manager.lis", "operator.mad"):
        login(other)
        assert client.get(f"/jobs/{job.pk}/").status_code == 404, other
        assert client.post(f"/jobs/{job.pk}/file/").status_code == 404, other
        assert client.get(f"/api/jobs/{job.pk}/").status_code == 404, other
        assert client.post(f"/api/jobs/{job.pk}/file/").status_code == 404, other
        client.logout()
    assert Event.objects.filter(event_type=JobEvent.FILE_DOWNLOADED).count() == 1


def test_the_api_follows_a_job_to_its_file(client, login, people):
    """The API shows the job with its file (name, type, size, hash, where to POST for it)."""
    job = _queued(people["qa"])
    login("qa")
    assert client.get(f"/api/jobs/{job.pk}/").json()["file"] is None
    assert client.post(f"/api/jobs/{job.pk}/file/").status_code == 404  # nothing made yet
    run_queued_jobs()
    body = client.get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == "done" and body["page"] == f"/jobs/{job.pk}/"
    assert body["file"] == {"name": "report.txt", "content_type": "text/plain; charset=utf-8", "bytes": 4,
                            "sha256": hashlib.sha256(b"a\nb\n").hexdigest(), "url": f"/api/jobs/{job.pk}/file/"}
    got = client.post(body["file"]["url"])
    assert got.status_code == 200 and got["X-POCare-File-SHA256"] == body["file"]["sha256"]


def test_a_failure_another_try_cannot_mend_fails_the_job_at_once(client, login, people):
    """An Unrecoverable error (no PDF engine) fails the job on its first try, with its message, shown
    on its page; ordinary errors are retried (tests/jobs/test_queue.py)."""
    with transaction.atomic():
        job = services.job_enqueue(task="tests.jobs.tasks.cannot", kwargs={"why": "no Pango here"},
                                   actor=people["qa"])
    run_queued_jobs()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.tries == 1 and job.error == "Unrecoverable: no Pango here"
    assert Event.objects.filter(event_type=JobEvent.FAILED).count() == 1
    login("qa")
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "The job failed" in page and "no Pango here" in page and "hx-trigger" not in page
