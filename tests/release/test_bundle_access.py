"""Who may ask for the inspector bundle (P11-10b, P11-10g): the permission's holders get it over the
web and the API through a job, each export and download recorded; others are refused and find no
other site's batch; the pages offer it to those who may export. These tests ask for bundles
themselves, so each makes a batch of its own; the tests of what a bundle holds, and of its script,
read one batch and bundle made once for their module (test_bundle.py)."""

from __future__ import annotations

import hashlib

import pytest
from django.db import transaction

from pocare.accounts.roles import ROLE_PERMS, Perm, Role
from pocare.jobs.events import JobEvent
from pocare.jobs.models import Job
from pocare.ledger.models import Event
from pocare.manufacturing.models import Batch
from pocare.release.bundle import bundle_export, bundle_export_request
from pocare.release.events import ReleaseEvent
from tests.jobs.run import download, job_of, run_queued_jobs, stored_bytes
from tests.manufacturing import helpers as h
from tests.release.test_bundle import PARTS, _batch_with_history, _members, _run_script

# The bundle tests' URLs: the bundle's own paths first, then the project's.
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.release.test_bundle")]


@pytest.fixture
def batch() -> Batch:
    return _batch_with_history()


def test_qa_qp_and_inspector_download_it_over_the_web_and_the_api(client, login, batch, tmp_path):
    """P11-10b P11-10g: the bundle-export permission (QA, QP, inspector) asks for the bundle, a job
    makes it and records the export, and the job's page gives the zip; each export is recorded, and
    each download too. The stored file verifies with its own script."""
    for who in ("qa", "qp", "inspector"):
        client.logout()
        login(who)
        asked = client.post(f"/release/batches/{batch.reference}/bundle.zip")
        response = download(client, asked)
        assert response["Content-Type"] == "application/zip"
        assert response["Content-Disposition"].startswith(f'attachment; filename="pocare-bundle-{batch.reference}-')
        assert set(_members(response.content_bytes)) == PARTS
        assert response["X-POCare-Export-Event"] == Event.objects.filter(
            event_type=ReleaseEvent.BUNDLE_EXPORTED).order_by("-pk").first().label
    api = client.post(f"/api/batches/{batch.reference}/bundle/")
    assert api.status_code == 202 and api.json()["url"] == f"/api/jobs/{api.json()['job']}/"
    job = job_of(api)
    assert job.status == "queued" and Event.objects.filter(event_type=ReleaseEvent.BUNDLE_EXPORTED).count() == 3
    run_queued_jobs()
    followed = client.get(api.json()["url"]).json()
    assert followed["status"] == "done" and followed["file"]["sha256"] == stored_sha(job)
    got = client.post(followed["file"]["url"])
    body = b"".join(got.streaming_content)
    assert got.status_code == 200 and got["Content-Type"] == "application/zip"
    assert hashlib.sha256(body).hexdigest() == followed["file"]["sha256"]
    assert Event.objects.filter(event_type=ReleaseEvent.BUNDLE_EXPORTED).count() == 4
    assert Event.objects.filter(event_type=JobEvent.FILE_DOWNLOADED).count() == 4
    assert _run_script(tmp_path, stored_bytes(job)).returncode == 0  # the stored file verifies


def stored_sha(job):  # type: ignore[no-untyped-def]
    return hashlib.sha256(stored_bytes(job)).hexdigest()


def test_the_download_is_refused_to_others_and_a_rolled_back_request_queues_nothing(client, login, batch):
    """P11-10g: the job's page and file are the asker's (and Control Site QA's): the site manager at
    Lisbon does not find the inspector's job (404) and nothing is recorded; a request whose transaction
    rolls back leaves no job."""
    login("inspector")
    job = job_of(client.post(f"/release/batches/{batch.reference}/bundle.zip"))
    run_queued_jobs()
    client.logout()
    login("manager.lis")
    before = Event.objects.count()
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/file/").status_code == 404
    assert client.post(f"/api/jobs/{job.pk}/file/").status_code == 404
    assert Event.objects.count() == before
    client.logout()
    login("qa")  # Control Site QA sees every job
    assert client.post(f"/jobs/{job.pk}/file/").status_code == 200
    count = Job.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        bundle_export_request(actor=h.user("qa"), batch=batch)
        raise RuntimeError("the request failed")
    assert Job.objects.count() == count


def test_people_without_the_permission_are_refused_and_another_sites_batch_is_not_found(
        client, login, batch, monkeypatch):
    """P11-10g: site people hold no bundle-export permission (403); and even someone who held it at
    another site would not find this batch (404) — nothing is exported, nothing is recorded."""
    login("manager.mad")
    assert client.post(f"/release/batches/{batch.reference}/bundle.zip").status_code == 403
    assert client.post(f"/api/batches/{batch.reference}/bundle/").status_code == 403
    monkeypatch.setitem(ROLE_PERMS, Role.SITE_MANAGER, ROLE_PERMS[Role.SITE_MANAGER] | {Perm.BUNDLE_EXPORT})
    client.logout()
    login("manager.lis")
    assert client.post(f"/release/batches/{batch.reference}/bundle.zip").status_code == 404
    assert client.post(f"/api/batches/{batch.reference}/bundle/").status_code == 404
    assert client.post("/release/batches/NO-SUCH-BATCH/bundle.zip").status_code == 404
    assert not Event.objects.filter(event_type=ReleaseEvent.BUNDLE_EXPORTED).exists()
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        bundle_export(actor=h.user("manager.lis"), batch=batch)


def test_the_bundle_is_offered_on_the_batch_and_release_pages_to_those_who_may_export_it(client, login, batch):
    """P11-10b: the inspector finds the bundle from the batch record and the release page (a
    POST, since the export is recorded); a site operator, who may not export, is not offered it."""
    for who, offered in (("inspector", True), ("operator.mad", False)):
        login(who)
        for url in (f"/manufacturing/batches/{batch.reference}/", f"/release/batches/{batch.reference}/"):
            page = client.get(url).content.decode()
            assert ('id="bundle-form"' in page) is offered, (who, url)
            if offered:
                assert f'action="/release/batches/{batch.reference}/bundle.zip"' in page
