from django.apps import AppConfig


class MasterfileConfig(AppConfig):
    name = "pocare.masterfile"
    label = "masterfile"
    verbose_name = "POCare Master File and change control"

    def ready(self) -> None:
        from pocare.masterfile import events  # noqa: F401  (registers the app's ledger event types)
