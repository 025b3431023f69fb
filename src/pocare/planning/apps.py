from django.apps import AppConfig


class PlanningConfig(AppConfig):
    name = "pocare.planning"
    label = "planning"
    verbose_name = "Network planning and digital twin"

    def ready(self) -> None:
        from pocare.planning import events  # noqa: F401  (registers the event types)
