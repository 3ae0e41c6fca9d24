"""Commissions API: an agent reads their own commission entries; a channel manager reads
statements and submits them, finance (an administrator) approves or rejects them.

Amounts are decimal strings in yuan to the fen. Another agent's entry and any statement
outside the caller's projects (every statement, for an agent) is 404, never 403. Send an
``Idempotency-Key`` header to retry a POST safely (the API's middleware replays the first
answer).
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Field, Query, Router, Schema

from homeclub.api.types import DbId, Offset
from homeclub.common.http import AuthedRequest

from .commission_selectors import (
    ENTRY_STATES,
    entry_list,
    statement_get,
    statement_lines,
    statement_list,
)
from .commission_statements import (
    statement_approve,
    statement_reject,
    statement_submit,
)
from .models_commission import CommissionEntry, CommissionStatement

router = Router(tags=["channel commissions"])


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class EntryOut(Schema):
    id: int
    kind: str
    kind_label: str
    project_id: int
    project_name: str
    agency_name: str
    report_id: int
    customer_name: str
    phone_masked: str
    unit_number: str
    trigger: str
    base_amount: Decimal
    rate: Decimal | None
    rank: int | None
    amount: Decimal
    scheme_version: int
    occurred_at: dt.datetime
    state: str
    settled_at: dt.datetime | None


class EntryFilters(Schema):
    project_id: DbId | None = None
    kind: str = ""
    state: str = Field("", description="open, on_statement or settled")
    limit: int = Field(50, ge=1, le=500)
    offset: Offset = 0


class StatementOut(Schema):
    id: int
    agency_id: int
    agency_name: str
    project_id: int
    project_name: str
    period_start: dt.date
    period_end: dt.date
    status: str
    status_label: str
    line_count: int
    earned_total: Decimal
    deducted_total: Decimal
    total: Decimal
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    reject_reason: str
    paid_at: dt.datetime | None


class StatementDetailOut(StatementOut):
    lines: list[EntryOut]


class StatementFilters(Schema):
    project_id: DbId | None = None
    agency_id: DbId | None = None
    status: str = ""
    limit: int = Field(50, ge=1, le=500)
    offset: Offset = 0


class RejectIn(Schema):
    reason: str = Field(..., max_length=1000)


def _state(e: CommissionEntry) -> str:
    if e.settled_at is not None:
        return "settled"
    return "on_statement" if e.statement_id else "open"


def entry_out(e: CommissionEntry) -> dict[str, Any]:
    return {
        "id": e.pk,
        "kind": e.kind,
        "kind_label": str(e.get_kind_display()),
        "project_id": e.project_id,
        "project_name": e.project.name,
        "agency_name": e.agency.name,
        "report_id": e.report_id,
        "customer_name": e.report.customer_name,
        "phone_masked": e.report.phone_masked,
        "unit_number": e.subscription.unit.number,
        "trigger": e.trigger,
        "base_amount": e.base_amount,
        "rate": e.rate,
        "rank": e.rank,
        "amount": e.amount,
        "scheme_version": e.scheme_version,
        "occurred_at": e.occurred_at,
        "state": _state(e),
        "settled_at": e.settled_at,
    }


def statement_out(s: CommissionStatement) -> dict[str, Any]:
    return {
        "id": s.pk,
        "agency_id": s.agency_id,
        "agency_name": s.agency.name,
        "project_id": s.project_id,
        "project_name": s.project.name,
        "period_start": s.period_start,
        "period_end": s.period_end,
        "status": s.status,
        "status_label": str(s.get_status_display()),
        "line_count": s.line_count,
        "earned_total": s.earned_total,
        "deducted_total": s.deducted_total,
        "total": s.total,
        "submitted_at": s.submitted_at,
        "decided_at": s.decided_at,
        "reject_reason": s.reject_reason,
        "paid_at": s.paid_at,
    }


def _detail(request: AuthedRequest, statement_id: int) -> dict[str, Any]:
    s = statement_get(viewer=request.auth, pk=statement_id)
    return {**statement_out(s), "lines": [entry_out(e) for e in statement_lines(statement=s)]}


@router.get("/commissions", response=list[EntryOut], summary="Commission entries (an agent: own)")
def commission_list_endpoint(
    request: AuthedRequest, filters: Query[EntryFilters]
) -> list[dict[str, Any]]:
    qs = entry_list(
        viewer=request.auth,
        project_id=filters.project_id,
        kind=filters.kind,
        state=filters.state if filters.state in ENTRY_STATES else "",
    )
    return [entry_out(e) for e in qs[filters.offset : filters.offset + filters.limit]]


@router.get("/commission-statements", response=list[StatementOut])
def statement_list_endpoint(
    request: AuthedRequest, filters: Query[StatementFilters]
) -> list[dict[str, Any]]:
    qs = statement_list(
        viewer=request.auth,
        project_id=filters.project_id,
        agency_id=filters.agency_id,
        status=filters.status,
    )
    return [statement_out(s) for s in qs[filters.offset : filters.offset + filters.limit]]


@router.get(
    "/commission-statements/{statement_id}", response={200: StatementDetailOut, 404: ErrorOut}
)
def statement_detail_endpoint(request: AuthedRequest, statement_id: DbId) -> dict[str, Any]:
    return _detail(request, statement_id)


@router.post(
    "/commission-statements/{statement_id}/submit",
    response={200: StatementDetailOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="A channel manager submits a statement to finance",
)
def statement_submit_endpoint(request: AuthedRequest, statement_id: DbId) -> dict[str, Any]:
    statement = statement_get(viewer=request.auth, pk=statement_id)
    statement_submit(actor=request.auth, statement=statement)
    return _detail(request, statement_id)


@router.post(
    "/commission-statements/{statement_id}/approve",
    response={200: StatementDetailOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Finance approves a submitted statement (send an Idempotency-Key to retry safely)",
)
def statement_approve_endpoint(request: AuthedRequest, statement_id: DbId) -> dict[str, Any]:
    statement = statement_get(viewer=request.auth, pk=statement_id)
    statement_approve(actor=request.auth, statement=statement)
    return _detail(request, statement_id)


@router.post(
    "/commission-statements/{statement_id}/reject",
    response={200: StatementDetailOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Finance sends a submitted statement back with a reason",
)
def statement_reject_endpoint(
    request: AuthedRequest, statement_id: DbId, payload: RejectIn
) -> dict[str, Any]:
    statement = statement_get(viewer=request.auth, pk=statement_id)
    statement_reject(actor=request.auth, statement=statement, reason=payload.reason)
    return _detail(request, statement_id)
