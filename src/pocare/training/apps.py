from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "pocare.training"
    label = "training"
    verbose_name = "Training, qualifications and the step gate"

    def ready(self) -> None:
        # Imports inside ready(): the app registry must be complete before models are imported.
        from pocare.masterfile.questions import TRAINING_GAPS
        from pocare.training import events  # noqa: F401  (registers the app's ledger event types)
        from pocare.training.selectors import versions_training_gaps

        TRAINING_GAPS.register(versions_training_gaps)
