"""Channels API: an agent reports customers and reads their own reports.

A report answers at once: 201 with the protection end time, or the refusal as
``{code, message, fields}`` — 409 ``already_reported`` / ``developer_protected``, 403
``agency_inactive``, 422 ``phone_invalid`` / ``masked_not_allowed``. Send an
``Idempotency-Key`` header to retry a report safely (the API's middleware replays the
first answer). Another agent's report is 404, never 403.
"""

import datetime as dt
from typing import Any

from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId, Offset
from homeclub.common.http import AuthedRequest

from .models import Report
from .selectors import report_get, report_list
from .services import report_create

router = Router(tags=["channels"])


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class ReportIn(Schema):
    project_id: DbId
    customer_name: str = Field(..., max_length=200)
    phone: str = Field(..., max_length=40)
    expected_visit_at: dt.datetime | None = None
    note: str = Field("", max_length=1000)


class ReportOut(Schema):
    id: int
    project_id: int
    project_name: str
    agency_name: str
    customer_name: str
    phone_masked: str
    status: str
    status_label: str
    reason: str
    reported_at: dt.datetime
    protected_until: dt.datetime | None
    expected_visit_at: dt.datetime | None
    visited_at: dt.datetime | None
    rule_version: int


class ReportFilters(Schema):
    status: str = ""
    project_id: DbId | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: Offset = 0


def report_out(r: Report) -> dict[str, Any]:
    return {
        "id": r.pk,
        "project_id": r.project_id,
        "project_name": r.project.name,
        "agency_name": r.agency.name if r.agency is not None else "",
        "customer_name": r.customer_name,
        "phone_masked": r.phone_masked,
        "status": r.status,
        "status_label": str(r.get_status_display()),
        "reason": r.reason,
        "reported_at": r.reported_at,
        "protected_until": r.protected_until,
        "expected_visit_at": r.expected_visit_at,
        "visited_at": r.visited_at,
        "rule_version": r.rule_version,
    }


@router.post(
    "/reports",
    response={201: ReportOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Report a customer (send an Idempotency-Key to retry safely)",
)
def report_create_endpoint(request: AuthedRequest, payload: ReportIn) -> Status[dict[str, Any]]:
    report = report_create(
        actor=request.auth,
        project=payload.project_id,
        customer_name=payload.customer_name,
        phone=payload.phone,
        expected_visit_at=payload.expected_visit_at,
        note=payload.note,
    )
    report = report_get(viewer=request.auth, pk=report.pk)
    return Status(201, report_out(report))


@router.get("/reports", response=list[ReportOut])
def report_list_endpoint(
    request: AuthedRequest, filters: Query[ReportFilters]
) -> list[dict[str, Any]]:
    qs = report_list(viewer=request.auth, project_id=filters.project_id, status=filters.status)
    return [report_out(r) for r in qs[filters.offset : filters.offset + filters.limit]]


@router.get("/reports/{report_id}", response={200: ReportOut, 404: ErrorOut})
def report_detail_endpoint(request: AuthedRequest, report_id: DbId) -> dict[str, Any]:
    return report_out(report_get(viewer=request.auth, pk=report_id))
