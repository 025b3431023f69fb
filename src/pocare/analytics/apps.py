from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "pocare.analytics"
    label = "analytics"
    verbose_name = "Comparability analytics"

    def ready(self) -> None:
        from pocare.analytics import events  # noqa: F401  (registers the event types)
