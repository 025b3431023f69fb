from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo network and its history; no models, one command (``pocare demo``)."""

    name = "pocare.demo"
    label = "demo"
    verbose_name = "Demo network and history"
