from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate

from pocare.ledger import triggers


class LedgerConfig(AppConfig):
    name = "pocare.ledger"
    label = "ledger"
    verbose_name = "Ledger (audit trail and electronic signatures)"

    def ready(self) -> None:
        from pocare.ledger import checks  # noqa: F401  (registers the trigger check)

        post_migrate.connect(_restore_triggers, sender=self)


def _restore_triggers(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """After every migrate, make sure the append-only triggers stand: on SQLite a migration that
    rebuilds a ledger table drops its triggers, and a later migration's author may not know."""
    connection = connections[using]
    if "ledger_event" not in connection.introspection.table_names():
        return
    if using != "default":
        triggers.install(connection)
        return
    # Late: anchoring writes ledger events, whose models need the app registry ready.
    from pocare.ledger.anchoring import triggers_install

    # Recorded in the trail when it creates any, so that the anchors' trigger fingerprint knows
    # this change was an install and not someone's drop and re-create.
    triggers_install(system="migrate", reason="Append-only triggers re-created after a migration")
