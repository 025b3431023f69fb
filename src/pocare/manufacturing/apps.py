from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    name = "pocare.manufacturing"
    label = "manufacturing"
    verbose_name = "Manufacturing: the electronic batch record"

    def ready(self) -> None:
        from pocare.manufacturing import events  # noqa: F401  (registers the event types)
