"""The database itself refuses to change or delete audit rows.

SQLite: a trigger aborts UPDATE (DELETE stays possible so the test runner can flush).
PostgreSQL: triggers abort UPDATE and DELETE; TRUNCATE (test flush) fires no row trigger.
"""

from typing import Any

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION homeclub_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'common_auditevent is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER common_auditevent_no_update BEFORE UPDATE OR DELETE ON common_auditevent
  FOR EACH ROW EXECUTE FUNCTION homeclub_audit_append_only();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS common_auditevent_no_update ON common_auditevent;
DROP FUNCTION IF EXISTS homeclub_audit_append_only();
"""
SQLITE_UP = """
CREATE TRIGGER common_auditevent_no_update BEFORE UPDATE ON common_auditevent
BEGIN SELECT RAISE(ABORT, 'common_auditevent is append-only'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS common_auditevent_no_update;"


def up(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


def down(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DOWN)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("common", "0002_initial")]
    operations = [migrations.RunPython(up, down)]
