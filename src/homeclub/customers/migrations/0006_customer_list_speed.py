"""The customer list at 1M customers (issue 3: first page p95 ≤ 300 ms).

- ``customer_newest`` (both databases): the list's order, so its first page reads 25 index
  entries instead of sorting the viewer's whole scope.
- PostgreSQL only, plain btree indexes (no extension, no superuser):
  ``reverse(number)`` on customers and phones with ``text_pattern_ops``, so the search by
  the last digits of a number (``reverse(number) LIKE '4321%'``) is an index range scan;
  and a partial index over names with a character outside the CJK ideograph blocks, which
  lets the latin-letter search's name branch join the pinyin and initials indexes in one
  bitmap OR (see ``customers.selectors.NAME_NOT_HAN``: the predicate here must stay the
  exact same text as the query's, or PostgreSQL can no longer prove the index applies).
  SQLite needs none of them at its sizes.
- PostgreSQL only: a finer histogram on ``name_pinyin`` and ``name_initials``. With the
  default one a three-letter initials prefix was estimated at 7,344 rows for 535 real, and
  the planner walked 200,000 rows of the newest-first index looking for 25 matches.
- Backfill: every customer gets the CustomerProject row for its own project if it lacks
  one (records written before that row existed); scoping relies on it (``holds_home``).
"""

from typing import Any

from django.db import migrations, models

# Same text as homeclub.customers.selectors.NAME_NOT_HAN (a test checks they match).
NAME_NOT_HAN = r"[^\u3400-\u4dbf\u4e00-\u9fff]"

PG_INDEXES = (
    (
        "customer_mobile_rev",
        "customers_customer",
        "(reverse(mobile) text_pattern_ops)",
        "",
    ),
    (
        "customerphone_number_rev",
        "customers_customerphone",
        "(reverse(number) text_pattern_ops)",
        "",
    ),
    (
        "customer_name_not_han",
        "customers_customer",
        "(id)",
        f"WHERE name ~ '{NAME_NOT_HAN}'",
    ),
)


SEARCH_COLUMNS = ("name_pinyin", "name_initials")
SEARCH_STATISTICS = 1000


def _set_statistics(schema_editor: Any, target: int) -> None:
    columns = ", ".join(f"ALTER COLUMN {c} SET STATISTICS {target}" for c in SEARCH_COLUMNS)
    schema_editor.execute(f"ALTER TABLE customers_customer {columns}")


def create_pg_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, columns, where in PG_INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {columns} {where}")
    _set_statistics(schema_editor, SEARCH_STATISTICS)


def drop_pg_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _columns, _where in PG_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    _set_statistics(schema_editor, -1)


def backfill_home_links(apps: Any, schema_editor: Any) -> None:
    customer = apps.get_model("customers", "Customer")._meta.db_table
    link = apps.get_model("customers", "CustomerProject")._meta.db_table
    schema_editor.execute(
        f"INSERT INTO {link} (customer_id, project_id, owner_id, first_seen_at,"  # noqa: S608
        " created_at, updated_at)"
        " SELECT c.id, c.project_id, c.owner_id, c.created_at, c.created_at, c.updated_at"
        f" FROM {customer} c WHERE NOT EXISTS (SELECT 1 FROM {link} l"
        " WHERE l.customer_id = c.id AND l.project_id = c.project_id)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_customerproject_pipeline"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["-created_at", "-id"], name="customer_newest"),
        ),
        migrations.RunPython(create_pg_indexes, drop_pg_indexes, elidable=False),
        migrations.RunPython(backfill_home_links, migrations.RunPython.noop, elidable=False),
    ]
