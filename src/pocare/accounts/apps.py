from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "pocare.accounts"
    label = "accounts"
    verbose_name = "Accounts, roles and sessions"
