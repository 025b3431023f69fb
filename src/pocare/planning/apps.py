from django.apps import AppConfig


class PlanningConfig(AppConfig):
    name = "pocare.planning"
    label = "planning"
    verbose_name = "Network planning and digital twin"

    def ready(self) -> None:
        # Imports inside ready(): the app registry must be complete before models are imported.
        from pocare.patients.questions import TRAVEL_MINUTES
        from pocare.planning import events  # noqa: F401  (registers the event types)
        from pocare.planning.selectors import travel_minutes

        TRAVEL_MINUTES.register(travel_minutes)
