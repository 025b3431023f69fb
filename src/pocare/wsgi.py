"""WSGI entry point (used by `pocare serve` and any WSGI server)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
application = get_wsgi_application()

from pocare.core.runtime import tune_for_serving  # noqa: E402  (after the application is loaded)

tune_for_serving()
