from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "pocare.accounts"
    label = "accounts"
    verbose_name = "Accounts, roles and sessions"

    def ready(self) -> None:
        # Imports inside ready(): the app registry must be complete before models are imported.
        from pocare.accounts import checks, events  # noqa: F401  (registers the event types and the sign-on check)
        from pocare.accounts.services import signing_credentials_check
        from pocare.ledger.questions import CREDENTIALS_CHECK

        CREDENTIALS_CHECK.register(signing_credentials_check)
