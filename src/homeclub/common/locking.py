"""Row locks taken in primary-key order, with a lock timeout that becomes "busy, retry".

Used where a conditional UPDATE cannot express the invariant (DESIGN.md §4).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import DatabaseError, OperationalError, connection, models

from .errors import Busy

M = TypeVar("M", bound=models.Model)


def lock_rows(queryset: models.QuerySet[M], *, timeout_ms: int = 3000) -> list[M]:
    """Lock the rows of ``queryset`` in pk order (no deadlock between two lockers) and
    return them. Must run inside a transaction. On PostgreSQL a lock wait longer than
    ``timeout_ms`` raises :class:`Busy`; SQLite serialises writers anyway."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_rows needs an open transaction")
    with lock_timeout(timeout_ms):
        try:
            return list(
                queryset.select_for_update(of=("self",), no_key=True).order_by("pk")
                if connection.vendor == "postgresql"
                else queryset.select_for_update().order_by("pk")
            )
        except OperationalError as exc:
            raise Busy() from exc


@contextmanager
def lock_timeout(timeout_ms: int) -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = %s", [f"{int(timeout_ms)}ms"])
    try:
        yield
    except DatabaseError as exc:
        if "lock timeout" in str(exc) or "could not obtain lock" in str(exc):
            raise Busy() from exc
        raise
