from django.apps import AppConfig


class MasterfileConfig(AppConfig):
    name = "pocare.masterfile"
    label = "masterfile"
    verbose_name = "POCare Master File and change control"

    def ready(self) -> None:
        # Imports inside ready(): the app registry must be complete before models are imported.
        from pocare.masterfile import events  # noqa: F401  (registers the app's ledger event types)
        from pocare.masterfile.selectors import product_changes
        from pocare.network.questions import PRODUCT_CHANGES

        PRODUCT_CHANGES.register(product_changes)
