from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "pocare.network"
    label = "network"
    verbose_name = "Network: the Control Site and POCare sites"

    def ready(self) -> None:
        from pocare.network import events  # noqa: F401  (registers the app's ledger event types)
