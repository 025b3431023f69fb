from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    name = "pocare.manufacturing"
    label = "manufacturing"
    verbose_name = "Manufacturing: the electronic batch record"

    def ready(self) -> None:
        # Imports inside ready(): the app registry must be complete before models are imported.
        from pocare.manufacturing import events  # noqa: F401  (registers the event types)
        from pocare.manufacturing.selectors import deviation_qc_source
        from pocare.quality.questions import DEVIATION_SOURCE

        DEVIATION_SOURCE.register(deviation_qc_source)
