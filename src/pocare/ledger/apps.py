from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "pocare.ledger"
    label = "ledger"
    verbose_name = "Ledger (audit trail and electronic signatures)"

    def ready(self) -> None:
        from pocare.ledger import checks  # noqa: F401  (registers the trigger check)
