"""Lanes (docs/ledger.md): a review of a site's audit trail also states the range it read of
each further lane of the site's chain."""

from django.db import migrations, models


def reinstall_triggers(apps, schema_editor):
    # SQLite rebuilds ledger_auditreview for the new column, dropping its triggers with it.
    from pocare.ledger.triggers import install

    install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_leaner_indexes")]

    operations = [
        migrations.AddField(
            model_name="auditreview",
            name="lanes",
            field=models.JSONField(
                blank=True, default=dict,
                help_text='The other lanes of the chain reviewed: {"MAD/1": {"from_seq": 1, "to_seq": 9, "to_hash": "…"}}.',
            ),
        ),
        migrations.RunPython(reinstall_triggers, migrations.RunPython.noop, elidable=False),
    ]
