from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "pocare.training"
    label = "training"
    verbose_name = "Training, qualifications and the step gate"

    def ready(self) -> None:
        from pocare.training import events  # noqa: F401  (registers the app's ledger event types)
