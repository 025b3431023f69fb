"""Index the events by the COI and DIN they state, so pages stop text-searching the ledger."""

import json

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SUBJECT_FIELDS = ("coi", "din", "order")  # as pocare.ledger.models.SUBJECT_FIELDS when this was written


def index_existing(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Read every event once (in id order, in batches) and index the keys it states."""
    Event = apps.get_model("ledger", "Event")
    EventSubject = apps.get_model("ledger", "EventSubject")
    rows = Event.objects.order_by("id").values_list("id", "old_values", "new_values")
    batch = []
    for pk, old, new in rows.iterator(chunk_size=5000):
        keys = {str(v)[:64] for text in (old, new) for name in SUBJECT_FIELDS
                if isinstance(v := json.loads(text).get(name), str | int) and str(v)}
        batch.extend(EventSubject(event_id=pk, key=k) for k in sorted(keys))
        if len(batch) >= 5000:
            EventSubject.objects.bulk_create(batch)
            batch = []
    EventSubject.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0004_lanes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='EventSubject',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64)),
            ],
            options={
                'db_table': 'ledger_eventsubject',
            },
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(fields=['actor_username', '-id'], name='ledger_event_actor_idx'),
        ),
        migrations.AddField(
            model_name='eventsubject',
            name='event',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='subjects', to='ledger.event'),
        ),
        migrations.AddIndex(
            model_name='eventsubject',
            index=models.Index(fields=['key', 'event'], name='ledger_subject_key_idx'),
        ),
        migrations.RunPython(index_existing, migrations.RunPython.noop),
    ]
