"""Channels API for risk, appeals and the dashboard.

- ``GET /risk/flags`` (channel manager, admin, analyst): computed risk flags with evidence.
- ``GET /dashboard`` (channel or sales manager, admin, analyst): figures by agency and
  project, and the share of deals by source.
- ``POST /appeals`` (agent): appeal the attribution of one of your reports — 201, or 409
  ``appeal_already_open`` / ``nothing_to_appeal`` / ``already_credited``, 404 for a report
  that is not yours.
- ``GET /appeals``, ``GET /appeals/{id}``: an agent's own appeals (another agent's is 404),
  a manager's appeals of their projects.
- ``POST /appeals/{id}/decide`` (sales or channel manager of the project): uphold or reject
  with a reason.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId, Offset
from homeclub.common.http import AuthedRequest

from .appeals import appeal_create, appeal_decide, appeal_get, appeal_list
from .dashboard import channel_dashboard, period_of
from .models_risk import Appeal, AppealStatus, RiskKind
from .risk import ReviewState, RiskFlag, risk_flags, risk_params

router = Router(tags=["channels"])


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class PeriodFilters(Schema):
    project_id: DbId | None = None
    date_from: dt.date | None = Field(None, description="first local day (default: 29 days ago)")
    date_to: dt.date | None = Field(None, description="last local day, inclusive (default: today)")


class RiskFilters(PeriodFilters):
    kind: RiskKind | None = None
    state: str = Field("", description="open | reviewed | (empty: both)")
    minutes_before_visit: int | None = Field(None, ge=1, le=24 * 60)


class EvidenceOut(Schema):
    ref: str
    at: dt.datetime | None
    what: str
    party: str
    detail: str


class RiskFlagOut(Schema):
    kind: str
    kind_label: str
    key: str
    project_id: int
    project_name: str
    severity: str
    at: dt.datetime
    summary: str
    evidence: list[EvidenceOut]
    metrics: dict[str, Any]
    reviewed: bool
    new_since_review: bool
    reviewed_at: dt.datetime | None
    review_note: str


def _flag_out(f: RiskFlag) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "kind_label": f.kind_label,
        "key": f.key,
        "project_id": f.project_id,
        "project_name": f.project_name,
        "severity": f.severity,
        "at": f.at,
        "summary": f.summary,
        "evidence": [e.__dict__ for e in f.evidence],
        "metrics": f.metrics,
        "reviewed": f.reviewed,
        "new_since_review": f.new_since_review,
        "reviewed_at": f.review.reviewed_at if f.review else None,
        "review_note": f.review.note if f.review else "",
    }


@router.get(
    "/risk/flags",
    response={200: list[RiskFlagOut], 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Risk flags (飞单/截客) with evidence",
)
def risk_flags_endpoint(
    request: AuthedRequest, filters: Query[RiskFilters]
) -> list[dict[str, Any]]:
    state = filters.state if filters.state in (ReviewState.OPEN, ReviewState.REVIEWED) else ""
    flags = risk_flags(
        viewer=request.auth,
        project_id=filters.project_id,
        period=period_of(filters.date_from, filters.date_to),
        kinds=[filters.kind] if filters.kind else None,
        state=state,
        params=risk_params(minutes_before_visit=filters.minutes_before_visit),
    )
    return [_flag_out(f) for f in flags]


class DashboardRowOut(Schema):
    project_id: int
    project_name: str
    agency_id: int | None
    agency_name: str
    reports: int
    rejected: int
    visits: int
    deals: int
    signed: int
    conversion: float | None
    commission: Decimal
    cost_per_deal: Decimal | None


class SourceOut(Schema):
    source: str
    label: str
    deals: int
    share: float


class DashboardOut(Schema):
    date_from: dt.date
    date_to: dt.date
    commission_available: bool
    rows: list[DashboardRowOut]
    totals: DashboardRowOut
    sources: list[SourceOut]


def _row_out(r: Any) -> dict[str, Any]:
    return {
        "project_id": r.project_id,
        "project_name": r.project_name,
        "agency_id": r.agency_id,
        "agency_name": r.agency_name,
        "reports": r.reports,
        "rejected": r.rejected,
        "visits": r.visits,
        "deals": r.deals,
        "signed": r.signed,
        "conversion": round(r.conversion, 4) if r.conversion is not None else None,
        "commission": r.commission,
        "cost_per_deal": r.cost_per_deal,
    }


@router.get(
    "/dashboard",
    response={200: DashboardOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Channel dashboard by agency and project",
)
def dashboard_endpoint(request: AuthedRequest, filters: Query[PeriodFilters]) -> dict[str, Any]:
    board = channel_dashboard(
        viewer=request.auth,
        project_id=filters.project_id,
        period=period_of(filters.date_from, filters.date_to),
    )
    return {
        "date_from": board.period.first_day,
        "date_to": board.period.last_day,
        "commission_available": board.commission_available,
        "rows": [_row_out(r) for r in board.rows],
        "totals": _row_out(board.totals),
        "sources": [s.__dict__ for s in board.sources],
    }


class AppealIn(Schema):
    report_id: DbId
    reason: str = Field(..., max_length=2000)


class DecisionIn(Schema):
    upheld: bool
    reason: str = Field(..., max_length=1000)


class AppealOut(Schema):
    id: int
    report_id: int
    project_id: int
    project_name: str
    customer_name: str
    status: str
    status_label: str
    reason: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decision_reason: str
    report_status: str


class AppealFilters(Schema):
    status: str = ""
    project_id: DbId | None = None
    report_id: DbId | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: Offset = 0


def _appeal_out(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.pk,
        "report_id": a.report_id,
        "project_id": a.project_id,
        "project_name": a.project.name,
        "customer_name": a.report.customer_name,
        "status": a.status,
        "status_label": str(AppealStatus(a.status).label),
        "reason": a.reason,
        "created_at": a.created_at,
        "decided_at": a.decided_at,
        "decision_reason": a.decision_reason,
        "report_status": a.report.status,
    }


@router.post(
    "/appeals",
    response={201: AppealOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Appeal the attribution of one of your reports",
)
def appeal_create_endpoint(request: AuthedRequest, payload: AppealIn) -> Status[dict[str, Any]]:
    appeal = appeal_create(actor=request.auth, report=payload.report_id, reason=payload.reason)
    return Status(201, _appeal_out(appeal_get(viewer=request.auth, pk=appeal.pk)))


@router.get("/appeals", response=list[AppealOut])
def appeal_list_endpoint(
    request: AuthedRequest, filters: Query[AppealFilters]
) -> list[dict[str, Any]]:
    qs = appeal_list(
        viewer=request.auth,
        project_id=filters.project_id,
        status=filters.status,
        report_id=filters.report_id,
    )
    return [_appeal_out(a) for a in qs[filters.offset : filters.offset + filters.limit]]


@router.get("/appeals/{appeal_id}", response={200: AppealOut, 404: ErrorOut})
def appeal_detail_endpoint(request: AuthedRequest, appeal_id: DbId) -> dict[str, Any]:
    return _appeal_out(appeal_get(viewer=request.auth, pk=appeal_id))


@router.post(
    "/appeals/{appeal_id}/decide",
    response={200: AppealOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Uphold or reject an appeal, with a reason",
)
def appeal_decide_endpoint(
    request: AuthedRequest, appeal_id: DbId, payload: DecisionIn
) -> dict[str, Any]:
    appeal = appeal_decide(
        actor=request.auth, appeal=appeal_id, upheld=payload.upheld, reason=payload.reason
    )
    return _appeal_out(appeal_get(viewer=request.auth, pk=appeal.pk))
