"""Make the ledger tables append-only in the database itself (see pocare.ledger.triggers)."""

from django.db import migrations


def install(apps, schema_editor):
    from pocare.ledger.triggers import install as install_triggers

    install_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop, elidable=False)]
