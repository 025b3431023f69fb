from django.apps import AppConfig


class TrailConfig(AppConfig):
    name = "pocare.trail"
    label = "trail"
    verbose_name = "Audit trail (browse, export, verify, review)"
