"""``pocare worker``: run jobs from the queue and the periodic schedule (docs/jobs.md)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from pocare.jobs.worker import WorkerLoop


class Command(BaseCommand):
    help = "Run queued jobs and the periodic schedule until stopped (SIGTERM stops after the running job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at an empty queue")
        parser.add_argument("--no-schedule", action="store_true", help="leave the periodic schedule to other workers")
        parser.add_argument("--burst", action="store_true", help="exit once nothing is due")
        parser.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
        parser.add_argument("--lease", type=float, default=None, help="seconds without a heartbeat before a "
                            "running job is taken back (default POCARE_JOBS_LEASE_SECONDS)")
        parser.add_argument("--name", default=None, help="this worker's name (default host:pid:random)")
        parser.add_argument("--parent", type=int, default=None, help="stop (after the running job) when this "
                            "process is gone: `pocare serve --with-worker` passes its own id")

    def handle(self, *args: Any, **options: Any) -> None:
        if not logging.getLogger("pocare.jobs").handlers:
            logging.basicConfig(level=logging.INFO if options["verbosity"] >= 1 else logging.WARNING,
                                format="%(asctime)s %(name)s %(levelname)s %(message)s")
        with_schedule = settings.POCARE_JOBS_SCHEDULE and not options["no_schedule"]
        loop = WorkerLoop(name=options["name"], poll=options["poll"], with_schedule=with_schedule,
                          lease=options["lease"], parent=options["parent"])
        loop.install_signals()
        self.stdout.write(f"Worker {loop.name} running (Ctrl+C or SIGTERM stops it after the running job).")
        self.stdout.flush()
        ran = loop.run(burst=options["burst"], max_jobs=options["max_jobs"])
        self.stdout.write(f"Worker {loop.name} stopped after {ran} job(s).")
