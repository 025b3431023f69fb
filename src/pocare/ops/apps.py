from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running an installation: `pocare backup` and `pocare restore` (docs/backup.md). No models:
    it handles the whole database from outside, through its own drivers and the PostgreSQL tools."""

    name = "pocare.ops"
    label = "ops"
    verbose_name = "Operations (backup and restore)"
