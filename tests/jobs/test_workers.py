"""Workers as real processes on the test database (committed rows, ``tx_db``): a worker killed with
SIGKILL mid-job loses nothing — its job is failed with an error naming it and tried again by another
worker; two workers run each of many jobs exactly once. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import transaction
from django.db.models import Count

from pocare.jobs import services
from pocare.jobs.models import Job, JobStatus
from tests.ops.processes import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("tx_db")]
ROOT = Path(__file__).resolve().parents[2]


def worker(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url(), "POCARE_JOBS_BACKOFF_SECONDS": "0.2",
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-m", "pocare.cli", "worker", "--no-schedule", "--poll", "0.05",
                             "--lease", "1", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_job_whose_worker_is_killed_is_failed_and_retried_never_lost(tmp_path):
    """SIGKILL the worker mid-job; the job's lease runs out, another worker takes
    it back (the error names the dead worker) and runs it to the end."""
    marker = tmp_path / "first-try.pid"
    with transaction.atomic():
        job = services.job_enqueue(task="tests.jobs.tasks.sleepy_once", kwargs={"marker": str(marker)})
    assert job is not None
    first = worker("--name", "doomed")
    try:
        wait_for(marker.exists)
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.worker == "doomed" and job.tries == 1
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # what a dead worker leaves behind
    second = worker("--name", "rescuer", "--max-jobs", "1")
    try:
        out, _ = second.communicate(timeout=90)
    finally:
        second.kill()
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, (job.status, job.error, out.decode()[-2000:])
    assert job.tries == 2 and job.worker == "rescuer"
    assert "WorkerLost: worker doomed stopped answering" in job.error
    assert job.result["first_try_pid"] == int(marker.read_text()) != job.result["pid"]


def test_two_workers_run_each_job_exactly_once(tmp_path):
    """Several workers on one database: every job runs, none twice (SKIP LOCKED on PostgreSQL, the
    conditional claim everywhere)."""
    log = tmp_path / "runs.log"
    n = 120
    with transaction.atomic():
        for i in range(n):
            services.job_enqueue(task="tests.jobs.tasks.mark", kwargs={"n": i, "log": str(log)})
    workers = [worker("--burst", "--name", f"w{k}") for k in range(2)]
    try:
        outs = [w.communicate(timeout=180)[0].decode() for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert all(w.returncode == 0 for w in workers), outs
    lines = log.read_text().split()
    runs = [int(x) for x in lines[0::2]]
    assert sorted(runs) == list(range(n)), "each job exactly once"
    assert Job.objects.filter(status=JobStatus.DONE).count() == n
    by_worker = dict(Job.objects.order_by().values_list("worker").annotate(n=Count("pk")))
    assert sum(by_worker.values()) == n and set(by_worker) <= {"w0", "w1"}


def test_serve_with_worker_runs_jobs_and_stops_its_worker(tmp_path):
    """The embedded default (`make demo`): `pocare serve --with-worker` starts one worker process that
    runs queued jobs, and stops it when the server stops."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "runs.log"
    with transaction.atomic():
        job = services.job_enqueue(task="tests.jobs.tasks.mark", kwargs={"n": 7, "log": str(log)})
    assert job is not None
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
           "POCARE_JOBS_SCHEDULE": "0"}  # no anchoring or monitor of the test database
    server = subprocess.Popen([sys.executable, "-m", "pocare.cli", "serve", "--port", str(port), "--with-worker"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240  # two interpreters start under a loaded CI machine
    while Job.objects.get(pk=job.pk).status != JobStatus.DONE and time.monotonic() < deadline:
        time.sleep(0.2)
    server.send_signal(signal.SIGTERM)  # as systemd stops it
    try:
        out, _ = server.communicate(timeout=60)
    finally:
        server.kill()
    text = out.decode()
    assert Job.objects.get(pk=job.pk).status == JobStatus.DONE, text[-3000:]
    assert "Job worker started beside the server" in text and "stopped after 1 job(s)" in text, text[-3000:]
    assert log.read_text().split()[0] == "7"
