"""`pocare serve`: serve POCare with waitress, a production WSGI server in pure Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class Command(BaseCommand):
    help = "Serve POCare over HTTP (put a TLS proxy in front of it in production)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--with-worker", action="store_true",
                            help="also start one `pocare worker` process beside the server (the embedded "
                                 "default; docs/jobs.md), stopped when the server stops")

    def handle(self, *args: Any, **options: Any) -> None:
        import waitress  # late: only this command serves

        from pocare.wsgi import application  # late: the WSGI application is built once settings are final

        db = settings.DATABASES["default"]
        self.stdout.write(
            f"POCare on http://{options['host']}:{options['port']}/ "
            f"({db['ENGINE'].rsplit('.', 1)[-1]}: {db['NAME']}). Ctrl+C stops it."
        )
        proxy: dict[str, Any] = {}
        if settings.POCARE_TRUSTED_PROXY:
            # Only this peer's forwarded protocol and client address are believed; waitress clears
            # X-Forwarded-* from every other peer (clear_untrusted_proxy_headers, on by default).
            proxy = {"trusted_proxy": settings.POCARE_TRUSTED_PROXY, "trusted_proxy_count": 1,
                     "trusted_proxy_headers": "x-forwarded-proto x-forwarded-for",
                     "clear_untrusted_proxy_headers": True}
            self.stdout.write(f"Trusting X-Forwarded-Proto and X-Forwarded-For from {settings.POCARE_TRUSTED_PROXY}.")
        worker = self._start_worker() if options["with_worker"] else None
        # SIGTERM (systemd, `kill`) ends the server as Ctrl+C does, so that the worker is stopped too.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            waitress.serve(application, host=options["host"], port=options["port"], threads=options["threads"],
                           ident="POCare", **proxy)
        finally:
            if worker is not None:
                worker.terminate()  # SIGTERM: the worker stops after its running job
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()  # its job's lease runs out and the next worker takes it back

    def _start_worker(self) -> subprocess.Popen[bytes]:
        """A separate process, not a thread: a job that crashes or hangs its interpreter leaves the
        server serving, and the worker is the same program that runs beside PostgreSQL in production."""
        command = [sys.executable, "-m", "pocare.cli", "worker", "--parent", str(os.getpid())]
        worker = subprocess.Popen(command)  # noqa: S603 - our own interpreter and command, no outside input
        self.stdout.write(f"Job worker started beside the server (pid {worker.pid}); /jobs/ shows its work.")
        return worker
