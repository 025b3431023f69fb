from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "pocare.quality"
    label = "quality"
    verbose_name = "Quality events"

    def ready(self) -> None:
        from pocare.quality import events  # noqa: F401  (registers the event types)
