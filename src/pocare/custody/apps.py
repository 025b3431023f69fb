from django.apps import AppConfig


class CustodyConfig(AppConfig):
    name = "pocare.custody"
    label = "custody"
    verbose_name = "Chain of identity and custody"

    def ready(self) -> None:
        from pocare.custody import events  # noqa: F401  (registers the event types)
