"""Opening rehearsal (开盘演练): replay a simulated opening against a copy of its data, so
the sales team can try the day before without touching the real opening.

Driven by ``manage.py opening_rehearse``, in three steps:

1. ``rehearsal_check`` (check.py) refuses what cannot be rehearsed: an unknown opening, one
   already started or closed (unless forced), nobody admitted, no units.
2. ``rehearsal_copy`` (database.py) creates a database next to the real one (SQLite: a
   file; PostgreSQL: ``<name>_rehearsal_<opening id>`` by a plain ``CREATE DATABASE``),
   gives it the real schema and copies, keeping primary keys, exactly the rows the opening
   needs. The real database is only read, inside a READ ONLY transaction (PostgreSQL) or
   with ``query_only`` set (SQLite).
3. ``rehearsal_simulate`` (simulation.py) runs in a child process whose default database
   IS the copy, so every service (``opening_pick``, ``opening_confirm``,
   ``holds_release_expired``) runs unchanged. It moves the copy's start to now + a few
   seconds; one simulated buyer per admitted pledge picks — favourites first, then similar
   free units as the phone page suggests — concurrently; a share of the holds is
   confirmed, the rest expire; the database is then checked: no unit sold twice, every
   pick accounted for, every pledge within its limit.

``report_lines`` (report.py) renders the report in the active language.
"""

from .check import RehearsalError, rehearsal_check
from .database import (
    COPY_ALIAS,
    COPY_ENV,
    CopyDatabase,
    ensure_in_copy,
    rehearsal_copy,
    rehearsal_drop,
    rehearsal_run_child,
)
from .report import report_lines
from .simulation import rehearsal_simulate

__all__ = [
    "COPY_ALIAS",
    "COPY_ENV",
    "CopyDatabase",
    "RehearsalError",
    "ensure_in_copy",
    "rehearsal_check",
    "rehearsal_copy",
    "rehearsal_drop",
    "rehearsal_run_child",
    "rehearsal_simulate",
    "report_lines",
]
