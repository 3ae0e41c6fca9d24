# ruff: noqa: S608 - table and index names come from _meta and the database's own catalog
"""A bulk import's deferred indexes: when an import is at least as big as the archive it
loads into (a first migration from an old CRM, say), the secondary indexes of the
archive's tables are dropped for the run and rebuilt once at its end, the way a restore
loads a dump — one sorted build per index instead of a million scattered insertions.

Only indexes that no constraint needs are deferred: primary keys and the unique phone,
ID number and project-link keys stay, so de-duplication and ``ON CONFLICT`` work as
always and nothing can be imported twice. The dropped indexes are recorded on the job in
the same transaction that drops them, so a run that fails rebuilds them on its way out
and a killed one rebuilds them when it is resumed and finishes. Searches by name, pinyin
or phone tail are slower while a bulk import runs.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, connection, transaction

from .models import Customer, CustomerPhone, CustomerProject, ImportJob

# Files shorter than this never defer: rebuilding costs more than it saves.
BULK_MIN_ROWS = 100_000
# PostgreSQL: how long the drop may wait for the tables' lock before giving up on bulk
# mode (a long query on the archive holds it).
LOCK_TIMEOUT = "2s"

_CREATE = re.compile(r"^\s*CREATE\s+INDEX\s+(IF\s+NOT\s+EXISTS\s+)?", re.IGNORECASE)


def _tables() -> list[str]:
    return [m._meta.db_table for m in (Customer, CustomerPhone, CustomerProject)]


def secondary_indexes() -> list[tuple[str, str]]:
    """(name, CREATE statement) of each index on the archive's tables that backs no
    primary key or unique constraint, by name."""
    tables = _tables()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_class t ON t.oid = x.indrelid"
                " WHERE t.relname = ANY(%s) AND NOT x.indisunique AND NOT x.indisprimary"
                " AND pg_table_is_visible(t.oid) ORDER BY 1",
                [tables],
            )
            return [(name, sql) for name, sql in cursor.fetchall()]
        marks = ", ".join(["%s"] * len(tables))
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({marks}) ORDER BY name",
            tables,
        )
        return [(name, sql) for name, sql in cursor.fetchall() if _CREATE.match(sql)]


def archive_size() -> int:
    """How many customers there are: counted once per big import (an index-only count,
    well under a second at millions; the planner's estimate can be stale by far)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(Customer._meta.db_table)}")
        return int(cursor.fetchone()[0])


def worth_deferring(*, rows: int, new_share: float, min_rows: int = BULK_MIN_ROWS) -> bool:
    """Bulk mode for a file of ``rows`` rows whose first batch was ``new_share`` new
    customers: when it is big and would at least double the archive (a re-import of
    known customers, mostly existing, never is)."""
    if rows < min_rows:
        return False
    return rows * new_share >= archive_size()


@contextmanager
def _ddl() -> Iterator[Any]:
    """A cursor in a transaction for index DDL. On PostgreSQL, foreign-key checks the
    open transaction still defers run first: index DDL refuses to run while any wait for
    the commit (only ever the case in a test's enclosing transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield cursor


def defer(job: ImportJob) -> bool:
    """Drop the secondary indexes and record them on the job, in one transaction. False
    (and nothing dropped) when the tables' lock is not free within ``LOCK_TIMEOUT``."""
    try:
        with _ddl() as cursor:
            indexes = secondary_indexes()
            if not indexes:
                return False
            if connection.vendor == "postgresql":
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
            for name, _sql in indexes:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
            job.deferred_indexes = [[name, sql] for name, sql in indexes]
            ImportJob.objects.filter(pk=job.pk).update(deferred_indexes=job.deferred_indexes)
    except DatabaseError:
        job.deferred_indexes = []
        return False
    return True


def rebuild(job: ImportJob) -> None:
    """Create the job's deferred indexes (those still missing) and forget them; on
    PostgreSQL, fresh statistics for the tables the run filled."""
    if not job.deferred_indexes:
        return
    with _ddl() as cursor:
        for _name, sql in job.deferred_indexes:
            cursor.execute(_CREATE.sub("CREATE INDEX IF NOT EXISTS ", sql, count=1))
        job.deferred_indexes = []
        ImportJob.objects.filter(pk=job.pk).update(deferred_indexes=[])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(_tables())}")
