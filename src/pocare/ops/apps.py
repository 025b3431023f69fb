from typing import Any

from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    """Running an installation: `pocare backup` and `pocare restore` (docs/backup.md); health,
    metrics and request logs (docs/operations.md). No models: it handles the whole database from
    outside, through its own drivers and the PostgreSQL tools."""

    name = "pocare.ops"
    label = "ops"
    verbose_name = "Operations (backup, restore, monitoring)"

    def ready(self) -> None:
        # Imports inside ready(): the checks read ledger models, which need the app registry.
        from pocare.core.monitoring import HEALTH_CHECKS
        from pocare.ops import health

        for check in (health.database_check, health.migrations_check, health.digests_check, health.triggers_check):
            HEALTH_CHECKS.register(check)
        post_migrate.connect(cache_table_create, sender=self, dispatch_uid="pocare.ops.cache_table")


def cache_table_create(*, using: str = "default", verbosity: int = 1, **_: Any) -> None:
    """`pocare migrate` also makes the shared cache's table when the cache is the database's
    (``POCARE_CACHE_URL`` unset): one step fewer to forget on an upgrade. Does nothing otherwise."""
    call_command("createcachetable", database=using, verbosity=max(0, verbosity - 1))
