"""Reads of channel commissions: schemes, entries and statements, scoped to the viewer."""

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from homeclub.org.scoping import (
    get_scoped,
    scoped,
)

from .commissions import (
    _local_midnight,
)
from .models_commission import (
    CommissionEntry,
    CommissionKind,
    CommissionScheme,
    CommissionStatement,
    CommissionTrigger,
    EntryKind,
    StatementStatus,
)

K, T, E, SS = CommissionKind, CommissionTrigger, EntryKind, StatementStatus


# --- selectors ----------------------------------------------------------------------------


def scheme_list(
    *, viewer: Any, agency_id: int | None = None, project_id: int | None = None
) -> QuerySet[CommissionScheme]:
    qs = scoped(CommissionScheme.objects.all(), viewer)
    if agency_id:
        qs = qs.filter(agency_id=agency_id)
    if project_id:
        qs = qs.filter(project_id=project_id)
    return qs.select_related("agency", "project").order_by("agency__name", "project_id", "-version")


ENTRY_STATES = ("open", "on_statement", "settled")


def entry_list(
    *,
    viewer: Any,
    agency_id: int | None = None,
    project_id: int | None = None,
    kind: str = "",
    state: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[CommissionEntry]:
    """Commission entries the viewer may see — an agent only their own — newest first.
    ``state``: open (on no statement), on_statement (not settled yet), settled."""
    qs = scoped(CommissionEntry.objects.all(), viewer)
    if agency_id:
        qs = qs.filter(agency_id=agency_id)
    if project_id:
        qs = qs.filter(project_id=project_id)
    if kind in E.values:
        qs = qs.filter(kind=kind)
    if state == "open":
        qs = qs.filter(statement__isnull=True)
    elif state == "on_statement":
        qs = qs.filter(statement__isnull=False, settled_at__isnull=True)
    elif state == "settled":
        qs = qs.filter(settled_at__isnull=False)
    if date_from:
        qs = qs.filter(occurred_at__gte=_local_midnight(date_from))
    if date_to:
        qs = qs.filter(occurred_at__lt=_local_midnight(date_to + dt.timedelta(days=1)))
    return qs.select_related(
        "agency", "project", "agent", "report", "subscription__unit", "statement"
    ).order_by("-occurred_at", "-id")


def statement_list(
    *,
    viewer: Any,
    agency_id: int | None = None,
    project_id: int | None = None,
    status: str = "",
) -> QuerySet[CommissionStatement]:
    """Statements of the viewer's projects; an agent sees none."""
    qs = scoped(CommissionStatement.objects.all(), viewer)
    if agency_id:
        qs = qs.filter(agency_id=agency_id)
    if project_id:
        qs = qs.filter(project_id=project_id)
    if status in SS.values:
        qs = qs.filter(status=status)
    return qs.select_related("agency", "project", "submitted_by", "decided_by").order_by(
        "-period_start", "-id"
    )


def statement_get(*, viewer: Any, pk: Any) -> CommissionStatement:
    """One statement the viewer may see, else NotFound (an agent's case always)."""
    return get_scoped(
        CommissionStatement.objects.select_related(
            "agency", "project", "created_by", "submitted_by", "decided_by"
        ),
        viewer,
        pk=pk,
    )


def statement_lines(*, statement: CommissionStatement) -> QuerySet[CommissionEntry]:
    return statement.lines.select_related(
        "agent", "agency", "project", "report", "subscription__unit", "statement"
    ).order_by("occurred_at", "id")
