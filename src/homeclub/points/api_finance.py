"""Finance API of the points ledger (mounted at ``/api/v1/points/finance``): the liability,
the monthly flows, a member's statement, and the dated rates (read; a new row to add).

Readers: admin, club operators and analysts (finance and rates); admin, club operators
and customer service (a member's statement). Everyone else gets 404, as for anything
out of scope. Rates are written by admins and club operators only.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.common.errors import NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.models import BusinessUnit

from .api import EntryOut, LotOut, entry_out
from .finance import (
    FlowRow,
    LiabilityRow,
    default_months,
    ensure_rate_editor,
    liability,
    member_statement,
    monthly_flows,
    parse_month,
    rate_history,
    rate_start,
)
from .models import EarnRate, PointValue
from .services import earn_rate_set, point_value_set

router = Router(tags=["points finance"])


class LiabilityRowOut(Schema):
    business_unit_id: int | None
    name: str
    balance: int
    due: int
    pending: int
    balance_yuan: Decimal | None
    pending_yuan: Decimal | None


class LiabilityOut(Schema):
    at: dt.datetime
    yuan_per_point: Decimal | None
    rows: list[LiabilityRowOut]
    total: LiabilityRowOut
    debt: int
    reconciles: bool


class FlowRowOut(Schema):
    business_unit_id: int | None
    name: str
    earned: int
    redeemed: int
    expired: int
    reversed: int
    adjusted: int
    net: int
    pending: int
    yuan: dict[str, Decimal | None]


class MonthOut(Schema):
    month: str
    yuan_per_point: Decimal | None
    rows: list[FlowRowOut]
    total: FlowRowOut


class FlowsOut(Schema):
    first: str
    last: str
    months: list[MonthOut]
    by_unit: list[FlowRowOut]
    total: FlowRowOut


class FlowsQuery(Schema):
    from_month: str = Field("", max_length=7, description="YYYY-MM; default: 11 months ago")
    to_month: str = Field("", max_length=7, description="YYYY-MM; default: this month")


class FiguresOut(Schema):
    balance: int
    pending: int
    debt: int


class StatementLineOut(Schema):
    entry: EntryOut
    balance: int
    pending: int
    debt: int


class StatementOut(Schema):
    member_id: int
    member_number: str
    first_day: dt.date
    last_day: dt.date
    opening: FiguresOut
    closing: FiguresOut
    closing_yuan: Decimal | None
    lines: list[StatementLineOut]
    lots: list[LotOut]


class StatementQuery(Schema):
    first_day: dt.date
    last_day: dt.date


class EarnRateOut(Schema):
    id: int
    business_unit_id: int
    points_per_unit: Decimal
    valid_from: dt.datetime
    note: str
    current: bool


class PointValueOut(Schema):
    id: int
    yuan_per_point: Decimal
    valid_from: dt.datetime
    note: str
    current: bool


class RatesOut(Schema):
    earn_rates: list[EarnRateOut]
    point_values: list[PointValueOut]


class EarnRateIn(Schema):
    business_unit_id: DbId
    points_per_unit: Decimal = Field(..., gt=0, max_digits=14, decimal_places=4)
    valid_from: dt.datetime | None = None
    note: str = Field("", max_length=200)


class PointValueIn(Schema):
    yuan_per_point: Decimal = Field(..., gt=0, max_digits=14, decimal_places=4)
    valid_from: dt.datetime | None = None
    note: str = Field("", max_length=200)


def _liability_row(row: LiabilityRow) -> dict[str, Any]:
    return {
        "business_unit_id": row.business_unit_id,
        "name": row.name,
        "balance": row.balance,
        "due": row.due,
        "pending": row.pending,
        "balance_yuan": row.balance_yuan,
        "pending_yuan": row.pending_yuan,
    }


def _flow_row(row: FlowRow) -> dict[str, Any]:
    return {
        "business_unit_id": row.business_unit_id,
        "name": row.name,
        "earned": row.earned,
        "redeemed": row.redeemed,
        "expired": row.expired,
        "reversed": row.reversed,
        "adjusted": row.adjusted,
        "net": row.net,
        "pending": row.pending,
        "yuan": row.yuan,
    }


@router.get("/liability", response=LiabilityOut)
def liability_get(request: AuthedRequest) -> dict[str, Any]:
    owed = liability(viewer=request.auth)
    return {
        "at": owed.at,
        "yuan_per_point": owed.point_value.yuan_per_point if owed.point_value else None,
        "rows": [_liability_row(r) for r in owed.rows],
        "total": _liability_row(owed.total),
        "debt": owed.debt,
        "reconciles": owed.reconciles,
    }


@router.get("/flows", response=FlowsOut)
def flows_get(request: AuthedRequest, period: Query[FlowsQuery]) -> dict[str, Any]:
    default_first, default_last = default_months()
    flows = monthly_flows(
        viewer=request.auth,
        first=parse_month(period.from_month, default_first),
        last=parse_month(period.to_month, default_last),
    )
    return {
        "first": f"{flows.first:%Y-%m}",
        "last": f"{flows.last:%Y-%m}",
        "months": [
            {
                "month": f"{m.month:%Y-%m}",
                "yuan_per_point": m.point_value.yuan_per_point if m.point_value else None,
                "rows": [_flow_row(r) for r in m.rows],
                "total": _flow_row(m.total),
            }
            for m in flows.months
        ],
        "by_unit": [_flow_row(r) for r in flows.by_unit],
        "total": _flow_row(flows.total),
    }


@router.get("/members/{member_id}/statement", response=StatementOut)
def statement_get(
    request: AuthedRequest, member_id: DbId, period: Query[StatementQuery]
) -> dict[str, Any]:
    s = member_statement(
        viewer=request.auth,
        member_id=member_id,
        first_day=period.first_day,
        last_day=period.last_day,
        max_lines=5000,
    )
    return {
        "member_id": s.member.pk,
        "member_number": s.member.number or "",
        "first_day": s.first_day,
        "last_day": s.last_day,
        "opening": vars(s.opening),
        "closing": vars(s.closing),
        "closing_yuan": s.closing_yuan,
        "lines": [
            {
                "entry": entry_out(line.entry),
                "balance": line.balance,
                "pending": line.pending,
                "debt": line.debt,
            }
            for line in s.lines
        ],
        "lots": s.lots,
    }


def _earn_out(rate: EarnRate, current: bool) -> dict[str, Any]:
    return {
        "id": rate.pk,
        "business_unit_id": rate.business_unit_id,
        "points_per_unit": rate.points_per_unit,
        "valid_from": rate.valid_from,
        "note": rate.note,
        "current": current,
    }


def _value_out(value: PointValue, current: bool) -> dict[str, Any]:
    return {
        "id": value.pk,
        "yuan_per_point": value.yuan_per_point,
        "valid_from": value.valid_from,
        "note": value.note,
        "current": current,
    }


@router.get("/rates", response=RatesOut)
def rates_get(request: AuthedRequest) -> dict[str, Any]:
    history = rate_history(viewer=request.auth)
    current = history.current_earn_ids
    return {
        "earn_rates": [_earn_out(r, r.pk in current) for r in history.earn_rates],
        "point_values": [
            _value_out(v, v.pk == history.current_value) for v in history.point_values
        ],
    }


@router.post("/rates/earn", response={201: EarnRateOut})
def earn_rate_post(request: AuthedRequest, payload: EarnRateIn) -> Status[dict[str, Any]]:
    ensure_rate_editor(request.auth)
    unit = BusinessUnit.objects.filter(pk=payload.business_unit_id, is_active=True).first()
    if unit is None:
        raise NotFound(gettext("Business unit not found."), code="business_unit_not_found")
    rate = earn_rate_set(
        actor=request.auth,
        business_unit=unit,
        points_per_unit=payload.points_per_unit,
        valid_from=rate_start(payload.valid_from),
        note=payload.note,
    )
    return Status(201, _earn_out(rate, rate.valid_from <= timezone.now()))


@router.post("/rates/value", response={201: PointValueOut})
def point_value_post(request: AuthedRequest, payload: PointValueIn) -> Status[dict[str, Any]]:
    ensure_rate_editor(request.auth)
    value = point_value_set(
        actor=request.auth,
        yuan_per_point=payload.yuan_per_point,
        valid_from=rate_start(payload.valid_from),
        note=payload.note,
    )
    return Status(201, _value_out(value, value.valid_from <= timezone.now()))
