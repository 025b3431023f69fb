"""ASGI entry point, for deployments that front POCare with an ASGI server."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
application = get_asgi_application()

from pocare.core.runtime import tune_for_serving  # noqa: E402  (after the application is loaded)

tune_for_serving()
