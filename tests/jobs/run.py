"""Running queued jobs in the test's own process, as a worker would (``pocare worker --burst``): the
tests of work that runs as a job (the inspector bundle, reports, exports) queue it through the page or
the API, then call :func:`run_queued_jobs` and read what the job made."""

from __future__ import annotations

from typing import Any

from pocare.jobs.files import file_open
from pocare.jobs.models import Job
from pocare.jobs.worker import WorkerLoop


def run_queued_jobs() -> int:
    """Claim and run every due job (on the test's database connection); the number run."""
    return WorkerLoop(name="test-worker", with_schedule=False, own_connection=False).run(burst=True)


def job_of(response: Any) -> Job:
    """The job a response sent the person to: the web's redirect to ``/jobs/<id>/``, or the API's 202."""
    if response.status_code == 202:
        return Job.objects.get(pk=response.json()["job"])
    assert response.status_code == 302, (response.status_code, response.content[:300])
    parts = response.url.rstrip("/").split("/")
    assert parts[-2] == "jobs", response.url
    return Job.objects.get(pk=int(parts[-1]))


def stored_bytes(job: Job) -> bytes:
    """The file a done job made, read back from the storage."""
    job.refresh_from_db()
    assert job.status == "done", (job.status, job.error)
    with file_open(job.file_name) as f:
        data: bytes = f.read()
    return data


def download(client: Any, response: Any) -> Any:
    """Follow a queued export to its file as a person would: run the job, then POST the job page's
    Download button; the file's response."""
    job = job_of(response)
    run_queued_jobs()
    job.refresh_from_db()
    assert job.status == "done", (job.status, job.error)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'action="/jobs/{job.pk}/file/"' in page, page[-2000:]
    got = client.post(f"/jobs/{job.pk}/file/")
    assert got.status_code == 200, got.status_code
    got.content_bytes = b"".join(got.streaming_content)
    return got
