"""Lot.business_unit (a copy of the earning entry's business unit, for the finance
reports) filled for existing lots from their earning entry, and an index on
Entry (kind, occurred_at) for the monthly flows."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("org", "0001_initial"),
        ("points", "0002_earning_rules"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="lot",
            name="business_unit",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="org.businessunit",
                verbose_name="business unit",
            ),
        ),
        # Existing lots: the business unit of the entry that opened them. One set-based
        # UPDATE, valid on PostgreSQL and SQLite alike.
        migrations.RunSQL(
            sql=(
                "UPDATE points_lot SET business_unit_id = (SELECT e.business_unit_id "
                "FROM points_entry e WHERE e.id = points_lot.entry_id) "
                "WHERE business_unit_id IS NULL"
            ),
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(fields=["kind", "occurred_at"], name="points_entry_kind_time_idx"),
        ),
    ]
