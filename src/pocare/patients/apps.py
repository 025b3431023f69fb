from django.apps import AppConfig


class PatientsConfig(AppConfig):
    """The patient's pathway from referral to 15-year follow-up (docs/patients.md). Above the batch
    record and release: it answers their questions (a withdrawn consent holds certification and
    dispatch; a booked manufacturing slot keeps its unit) through ``pocare.core.registry``."""

    name = "pocare.patients"
    label = "patients"
    verbose_name = "Patients (referral to follow-up)"

    def ready(self) -> None:
        # Answers are registered by the modules that compute them (docs/architecture.md,
        # "Asking upward"); each import is here because the answers need the app registry.
        from pocare.patients import answers

        answers.register()  # the answers and the work queues
