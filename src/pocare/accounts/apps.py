from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "pocare.accounts"
    label = "accounts"
    verbose_name = "Accounts, roles and sessions"

    def ready(self) -> None:
        from pocare.accounts import events  # noqa: F401  (registers the app's ledger event types)
