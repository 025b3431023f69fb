"""PostgreSQL: trigram indexes for the trail's text search (object and reason), so that a search
reads the index instead of every event. pg_trgm is a trusted extension (PostgreSQL 13+): the
database's owner may create it. SQLite has no such index; its trails are small."""

from django.db import migrations

INDEXES = (
    ("ledger_event_repr_trgm", "object_repr"),
    ("ledger_event_reason_trgm", "reason"),
)


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES:
        # Django's icontains on PostgreSQL is UPPER(col::text) LIKE UPPER(%s): the index is on that.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON ledger_event USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_event_subjects")]

    operations = [migrations.RunPython(create, drop)]
