"""The worker loop: announce, reap dead workers' jobs, tick the schedule, claim and run one job.

A job runs in the loop's thread; beside it a heartbeat thread renews the job's lease every quarter
lease, on its own database connection. SIGTERM and SIGINT stop the loop after the running job; a
SIGKILL (or a power cut) stops it dead, and then the lease runs out and another worker's reaper takes
the job back (``services.jobs_reap``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from types import FrameType

from django.db import close_old_connections, connection
from django.utils import timezone

from pocare.jobs import schedule, services
from pocare.jobs.models import Job

log = logging.getLogger("pocare.jobs")

def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

class Heartbeat(threading.Thread):
    """Renews one running job's lease until stopped."""

    def __init__(self, job_id: int, worker: str, every: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.job_id, self.worker, self.every = job_id, worker, every
        self.stopped = threading.Event()  # lint: allow threading.Event, not a ledger row

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                try:
                    services.job_heartbeat(job_id=self.job_id, worker=self.worker)
                except Exception:  # a missed beat is retried; the lease tolerates three
                    log.exception("heartbeat of job %s failed", self.job_id)
        finally:
            connection.close()

class WorkerLoop:
    """One worker. ``schedule`` off leaves the periodic schedule to other workers."""

    def __init__(self, *, name: str | None = None, poll: float = 1.0, with_schedule: bool = True,
                 lease: float | None = None, own_connection: bool = True) -> None:
        self.name = name or worker_name()
        self.poll = poll
        self.with_schedule = with_schedule
        self.lease = services.lease_seconds() if lease is None else lease
        self.started_at = timezone.now()
        self.stop = threading.Event()  # lint: allow threading.Event, not a ledger row
        self._next_tick = 0.0
        self._next_reap = 0.0
        self.ran = 0
        # A worker process recycles its connection between jobs; a loop run inside a test's
        # transaction (own_connection=False) must leave the test's connection alone.
        self.own_connection = own_connection

    def install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("worker %s: %s, stopping after the running job", self.name, signal.strsignal(signum))
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def housekeeping(self, clock: float) -> None:
        services.worker_seen(name=self.name, started_at=self.started_at)
        if clock >= self._next_reap:
            services.jobs_reap(lease=self.lease)
            self._next_reap = clock + max(1.0, self.lease / 4)
        if self.with_schedule and clock >= self._next_tick:
            schedule.schedule_tick()
            self._next_tick = clock + schedule.TICK_SECONDS

    def run_one(self) -> Job | None:
        """Claim and run the next due job; None when none is due."""
        job = services.job_claim(worker=self.name)
        if job is None:
            return None
        beat = Heartbeat(job.pk, self.name, every=max(0.2, self.lease / 4))
        beat.start()
        try:
            return services.job_run(job=job, worker=self.name)
        finally:
            beat.stopped.set()
            beat.join()
            self.ran += 1

    def run(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        """Loop until stopped (or, with ``burst``, until nothing is due). The number of jobs run."""
        log.info("worker %s started (schedule %s, lease %s s)", self.name, "on" if self.with_schedule else "off",
                 self.lease)
        while not self.stop.is_set():
            if self.own_connection:
                close_old_connections()
            try:
                self.housekeeping(time.monotonic())
                job = self.run_one()
            except Exception:  # the loop outlives a database hiccup; the job's lease covers it
                log.exception("worker %s: loop error", self.name)
                job = None
                self.stop.wait(self.poll)
            if max_jobs is not None and self.ran >= max_jobs:
                break
            if job is None:
                if burst:
                    break
                self.stop.wait(self.poll)
        if self.own_connection:
            connection.close()
        return self.ran
