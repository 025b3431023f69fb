"""Fewer indexes on ledger_event (each is paid on every append): the actor's foreign key has its
own index, and event_type needs no LIKE index on PostgreSQL."""

from django.db import migrations, models


def reinstall_triggers(apps, schema_editor):
    # SQLite rebuilds ledger_event for the field change below, dropping its triggers with it.
    from pocare.ledger.triggers import install

    install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_append_only_triggers")]

    operations = [
        migrations.RemoveIndex(model_name="event", name="ledger_event_actor_idx"),
        migrations.AlterField(model_name="event", name="event_type", field=models.CharField(max_length=64)),
        migrations.AddIndex(
            model_name="event", index=models.Index(fields=["event_type"], name="ledger_event_type_idx")
        ),
        migrations.RunPython(reinstall_triggers, migrations.RunPython.noop, elidable=False),
    ]
