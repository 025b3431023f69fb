# Storage conditions per material, deliveries against a purchase request, QA's disposition of stock held
# on a transfer (issue 18's gaps).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('manufacturing', '0009_materiallot_manufacturing_lot_number'),
        ('supply', '0004_merge_0003_lead_time_0003_transfers_purchases'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='MaterialStorage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('material_code', models.CharField(max_length=64, unique=True)),
                ('min_celsius', models.DecimalField(blank=True, decimal_places=2, help_text='Lowest °C (inclusive); empty: no lowest.', max_digits=6, null=True)),
                ('max_celsius', models.DecimalField(blank=True, decimal_places=2, help_text='Highest °C (inclusive); empty: no highest.', max_digits=6, null=True)),
                ('condition', models.CharField(help_text='In words, as on the label: e.g. Refrigerated 2–8 °C.', max_length=120)),
                ('set_at', models.DateTimeField()),
                ('set_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['material_code'],
                'constraints': [models.CheckConstraint(condition=models.Q(('min_celsius__isnull', False), ('max_celsius__isnull', False), _connector='OR'), name='supply_storage_some_limit'), models.CheckConstraint(condition=models.Q(('min_celsius__isnull', True), ('max_celsius__isnull', True), ('min_celsius__lte', models.F('max_celsius')), _connector='OR'), name='supply_storage_low_below_high')],
            },
        ),
        migrations.AddField(
            model_name='transfer',
            name='disposition',
            field=models.CharField(blank=True, choices=[('released', 'Released back to use'), ('destroyed', 'Rejected and destroyed')], max_length=10),
        ),
        migrations.AddField(
            model_name='transfer',
            name='disposed_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='transfer',
            name='disposed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='transfer',
            name='disposition_reason',
            field=models.TextField(blank=True),
        ),
        migrations.AlterField(
            model_name='transfer',
            name='status',
            field=models.CharField(choices=[('in_transit', 'In transit'), ('received', 'Received'), ('held', 'Arrived, held: something went wrong on the way'), ('destroyed', "Held, then destroyed on QA's decision")], default='in_transit', max_length=12),
        ),
        migrations.CreateModel(
            name='PurchaseDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('quantity', models.DecimalField(decimal_places=3, max_digits=14)),
                ('received_at', models.DateTimeField()),
                ('lot', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='manufacturing.materiallot')),
                ('movement', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='supply.stockmovement')),
                ('received_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('request', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='supply.purchaserequest')),
            ],
            options={
                'ordering': ['request', 'received_at', 'pk'],
                'constraints': [models.CheckConstraint(condition=models.Q(('quantity__gt', 0)), name='supply_delivery_positive')],
            },
        ),
    ]
