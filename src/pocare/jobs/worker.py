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
    """Renews the lease of the worker's running job, if any, every ``every`` seconds — one thread for
    the worker's life (a thread per job cost more than a trivial job), on its own connection."""

    def __init__(self, worker: str, every: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{worker}")
        self.worker, self.every = worker, every
        self.job_id: int | None = None
        self.stopped = threading.Event()  # lint: allow threading.Event, not a ledger row

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                job_id = self.job_id
                if job_id is None:
                    continue
                try:
                    services.job_heartbeat(job_id=job_id, worker=self.worker)
                except Exception:  # a missed beat is retried; the lease tolerates three
                    log.exception("heartbeat of job %s failed", job_id)
                    connection.close()
        finally:
            connection.close()


class WorkerLoop:
    """One worker. ``schedule`` off leaves the periodic schedule to other workers."""

    def __init__(self, *, name: str | None = None, poll: float = 1.0, with_schedule: bool = True,
                 lease: float | None = None, own_connection: bool = True, parent: int | None = None) -> None:
        self.name = name or worker_name()
        self.poll = poll
        self.with_schedule = with_schedule
        self.lease = services.lease_seconds() if lease is None else lease
        self.started_at = timezone.now()
        self.stop = threading.Event()  # lint: allow threading.Event, not a ledger row
        self._next_tick = 0.0
        self._next_reap = 0.0
        self._next_seen = 0.0
        self.heartbeat: Heartbeat | None = None
        self.ran = 0
        # A worker process recycles its connection between jobs; a loop run inside a test's
        # transaction (own_connection=False) must leave the test's connection alone.
        self.own_connection = own_connection
        self.parent = parent  # the server that started this worker: when it is gone, so is the worker

    def install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("worker %s: %s, stopping after the running job", self.name, signal.strsignal(signum))
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def housekeeping(self, clock: float) -> None:
        if clock >= self._next_seen:
            services.worker_seen(name=self.name, started_at=self.started_at)
            self._next_seen = clock + 5.0
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
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.name, every=max(0.2, self.lease / 4))
            self.heartbeat.start()
        self.heartbeat.job_id = job.pk
        try:
            return services.job_run(job=job, worker=self.name)
        finally:
            self.heartbeat.job_id = None
            self.ran += 1

    def run(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        """Loop until stopped (or, with ``burst``, until nothing is due). The number of jobs run."""
        log.info("worker %s started (schedule %s, lease %s s)", self.name, "on" if self.with_schedule else "off",
                 self.lease)
        recycle_at = 0.0
        while not self.stop.is_set():
            # Drop a broken or aged connection now and then, not every loop: on SQLite (CONN_MAX_AGE 0)
            # that would reconnect for every job.
            if self.own_connection and time.monotonic() >= recycle_at:
                close_old_connections()
                recycle_at = time.monotonic() + 30.0
            try:
                self.housekeeping(time.monotonic())
                job = self.run_one()
            except Exception:  # the loop outlives a database hiccup; the job's lease covers it
                log.exception("worker %s: loop error", self.name)
                job, recycle_at = None, 0.0
                self.stop.wait(self.poll)
            if max_jobs is not None and self.ran >= max_jobs:
                break
            if self.parent is not None and os.getppid() != self.parent:
                log.info("worker %s: the process that started it (%s) is gone; stopping", self.name, self.parent)
                break
            if job is None:
                if burst:
                    break
                self.stop.wait(self.poll)
        if self.heartbeat is not None:
            self.heartbeat.stopped.set()
            self.heartbeat.join()
        if self.own_connection:
            connection.close()
        return self.ran
