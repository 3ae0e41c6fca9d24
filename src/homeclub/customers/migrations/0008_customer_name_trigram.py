"""Searching the archive by Chinese characters (``张伟明``) at 1M customers.

A name search is "the name contains the text", which no btree serves: PostgreSQL read the
whole table. On PostgreSQL this adds ``pg_trgm`` and a GIN trigram index on the name, which
serves ``name LIKE '%…%'`` for any text of three characters or more (pg_trgm indexes CJK
characters under a UTF-8 ctype). One or two characters (a surname, ``张伟``) are too short
for trigrams; those match many people, and the newest-first index finds a page of them
quickly anyway. ``pg_trgm`` is a trusted extension (PostgreSQL 13+): the database's owner
may create it. Where even that is not allowed the index is skipped with a notice and the
search still works, only slower. SQLite needs nothing at its sizes.
"""

from typing import Any

from django.db import migrations, transaction
from django.db.utils import DatabaseError

INDEX = "customer_name_trgm"


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # not allowed here: search works without the index
        print(f"\n  customers: pg_trgm unavailable ({exc}); name search stays unindexed")
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON customers_customer USING gin (name gin_trgm_ops)"
    )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0007_familymember_decider_payer"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
