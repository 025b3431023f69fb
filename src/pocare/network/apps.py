from django.apps import AppConfig


class NetworkConfig(AppConfig):
    name = "pocare.network"
    label = "network"
    verbose_name = "Network: the Control Site and POCare sites"
