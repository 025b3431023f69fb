"""`pocare serve`: serve POCare with waitress, a production WSGI server in pure Python."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve POCare over HTTP (put a TLS proxy in front of it in production)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args: Any, **options: Any) -> None:
        import waitress

        from pocare.wsgi import application

        db = settings.DATABASES["default"]
        self.stdout.write(
            f"POCare on http://{options['host']}:{options['port']}/ "
            f"({db['ENGINE'].rsplit('.', 1)[-1]}: {db['NAME']}). Ctrl+C stops it."
        )
        waitress.serve(application, host=options["host"], port=options["port"], threads=options["threads"],
                       ident="POCare")
