"""Migration operations Django does not have."""

from typing import Any

from django.db import migrations


class DropForeignKeyIndex(migrations.SeparateDatabaseAndState):
    """``AlterField`` of a foreign key to ``db_index=False`` without what Django's schema
    editor does for it on PostgreSQL: drop the constraint, drop the index, add the
    constraint again — which checks every row of a table that may hold millions. Here
    the state changes as the AlterField says, and the database only loses the column's
    single-column, non-unique indexes (found by introspection, whatever their generated
    names). Reversing creates the index again."""

    def __init__(self, app_label: str, alter: migrations.AlterField) -> None:
        self.app_label = app_label
        self.alter = alter
        super().__init__(
            state_operations=[alter],
            database_operations=[migrations.RunPython(self._drop, self._create)],
        )

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.app_label, self.alter], {})

    def _field(self, apps: Any) -> tuple[Any, Any]:
        model = apps.get_model(self.app_label, self.alter.model_name)
        return model, model._meta.get_field(self.alter.name)

    def _drop(self, apps: Any, schema_editor: Any) -> None:
        model, field = self._field(apps)
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        for name, info in constraints.items():
            if (
                info.get("index")
                and not info.get("unique")
                and not info.get("primary_key")
                and info.get("columns") == [field.column]
            ):
                schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")

    def _create(self, apps: Any, schema_editor: Any) -> None:
        model, field = self._field(apps)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))

    def describe(self) -> str:
        return f"Drop the index of {self.alter.model_name}.{self.alter.name}, keep the constraint"
