"""Database helpers shared by the hot paths."""

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models, transaction

_prepared_cursor_class: Any = None


def prepared_cursor() -> Any:
    """A cursor whose statements PostgreSQL prepares (plans once per connection), wrapped
    like every Django cursor, so query logging and execute wrappers still see it. Django's
    own cursors bind parameters client-side, which can never be prepared. Like Django's
    cursors, the first one of a request on a reused connection runs the health check
    (CONN_HEALTH_CHECKS), so a connection that died between requests is replaced instead
    of failing the request; the opening's hot views skip it on purpose."""
    global _prepared_cursor_class
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()  # type: ignore[attr-defined]
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:  # PG_PREPARE=false
        return connection.cursor()
    if _prepared_cursor_class is None:
        from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
            ServerBindingCursor,
        )

        class PreparedCursor(ServerBindingCursor):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                kwargs["prepare"] = True
                return super().execute(query, params, **kwargs)

        _prepared_cursor_class = PreparedCursor
    wrap = connection._prepare_cursor  # type: ignore[attr-defined]
    return wrap(_prepared_cursor_class(connection.connection))


def statement_scope() -> Any:
    """For one statement that is its own transaction in autocommit: nothing to open
    (BEGIN and COMMIT would be two more round trips); inside an open transaction a
    savepoint, so that its failure leaves the transaction usable."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def local_settings_sql(settings: Mapping[str, str]) -> tuple[str, list[str]]:
    """``SELECT set_config(name, value, true), …``: SET LOCAL of each setting, which lasts
    to the end of the current transaction (PostgreSQL)."""
    sql = "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in settings)
    return sql, [part for item in settings.items() for part in item]


def fetchone_with_local_settings(
    sql: str, params: Sequence[Any] | Mapping[str, Any], settings: Mapping[str, str]
) -> Any:
    """The first row of one prepared statement run after :func:`local_settings_sql` of
    ``settings``, both sent in one pipeline (PostgreSQL): in autocommit a pipeline up to
    its Sync is one implicit transaction, so the settings last for this statement alone
    and an error rolls back both, in one round trip. Inside an open transaction the
    settings last to its end. No settings: the statement alone."""
    # wrap_database_errors: an error surfaces at the pipeline's end, outside the cursor's
    # own wrapper, and must still arrive as Django's exception classes.
    with connection.wrap_database_errors, prepared_cursor() as cursor:
        if settings:
            set_sql, set_params = local_settings_sql(settings)
            with connection.connection.pipeline():
                cursor.execute(set_sql, set_params)
                cursor.execute(sql, params)
        else:
            cursor.execute(sql, params)
        return cursor.fetchone()


# --- querysets compiled once ----------------------------------------------------------------

PLANS_MAX = 256  # per connection and cache: scopes seen by one worker are few


@dataclass(frozen=True)
class CompiledQuery:
    """A queryset's SQL compiled by the ORM once, with a sentinel where a value goes:
    compiling a scoped queryset costs more Python than running its statement. ``at``: the
    positions of the sentinel in ``params``."""

    sql: str
    params: tuple[Any, ...]
    at: tuple[int, ...]
    compiler: Any
    converters: Any
    init_list: tuple[str, ...]
    start: int
    end: int

    def bind(self, value: Any) -> list[Any]:
        params = list(self.params)
        for i in self.at:
            params[i] = value
        return params

    def instance(self, model: type[models.Model], values: Sequence[Any]) -> Any:
        """The model instance of one row of this query's columns, converted as the ORM
        converts them; fields the query did not select stay deferred."""
        if self.converters:
            (values,) = self.compiler.apply_converters([values], self.converters)
        return model.from_db(connection.alias, self.init_list, values[self.start : self.end])


def compile_query(queryset: models.QuerySet[Any], sentinel: Any) -> CompiledQuery | None:
    """``queryset`` compiled for the current connection (None: it can match nothing, e.g.
    a viewer who sees no row at all). The sentinel must appear among its parameters."""
    compiler = queryset.query.get_compiler(connection=connection)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return None
    at = tuple(i for i, value in enumerate(params) if value == sentinel)
    if not at:
        raise RuntimeError("the compiled SQL does not carry the sentinel")
    fields = compiler.klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    return CompiledQuery(
        sql=sql,
        params=tuple(params),
        at=at,
        compiler=compiler,
        converters=compiler.get_converters(
            [expr for expr, _sql, _alias in compiler.select[: compiler.col_count]]
        ),
        init_list=tuple(col.target.attname for col, _sql, _alias in compiler.select[start:end]),
        start=start,
        end=end,
    )


def connection_plans(name: str) -> dict[Any, Any]:
    """A cache of compiled plans kept on the current database connection (a plan holds
    that connection's SQL and prepared statements), emptied when it reaches PLANS_MAX."""
    cache: dict[Any, Any] = connection.__dict__.setdefault(name, {})
    if len(cache) >= PLANS_MAX:
        cache.clear()
    return cache
