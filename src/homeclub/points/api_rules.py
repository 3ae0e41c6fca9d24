"""Earning rules over the API (mounted at ``/api/v1/points`` next to the ledger's router):
the rules and their versions, a new version, manual adjustments with approval
(``/adjustments``), and ``POST /earn`` for integrations (e.g. a
mall POS: merchant spend by member number, phone or scanned card code).

``POST /earn`` is idempotent twice over: the ``Idempotency-Key`` middleware replays a
retried request, and the service decides once per (source_type, source_id) whatever the
key. Points come from the rule in force, within its caps; zero points is not an error —
the answer says why (``outcome`` and ``message``)."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.club.card import card_token_verify
from homeclub.club.models import Member
from homeclub.club.selectors import member_lookup
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.org.models import BusinessUnit, OrgNode
from homeclub.org.scoping import get_scoped, scope_of

from .adjustments import (
    adjustment_approve,
    adjustment_list,
    adjustment_reject,
    adjustment_request,
)
from .earning import EarnResult, entry_counts, points_earn, rule_create, rule_list
from .models import AdjustmentRequest, EarningRule

router = Router(tags=["points rules"])


class RuleOut(Schema):
    id: int
    code: str
    version: int
    rule_version: str
    name: str
    trigger: str
    formula: str
    fixed_points: int
    rate_per_yuan: Decimal
    unit: str
    business_unit_id: int
    apply_tier_multiplier: bool
    cap_per_day: int | None
    cap_per_month: int | None
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    is_active: bool
    pending: bool
    project_ids: list[int]
    business_unit_ids: list[int]
    entries: int


class RuleIn(Schema):
    code: str = Field(..., min_length=1, max_length=32)
    name: str = Field(..., min_length=1, max_length=100)
    trigger: str
    formula: str = "fixed"
    fixed_points: int = Field(0, ge=0, le=10**9)
    rate_per_yuan: Decimal = Field(Decimal("0"), ge=0, max_digits=14, decimal_places=4)
    unit: str = "club"
    business_unit_id: DbId
    apply_tier_multiplier: bool = True
    cap_per_day: int | None = Field(None, ge=0, le=10**9)
    cap_per_month: int | None = Field(None, ge=0, le=10**9)
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    is_active: bool = True
    pending: bool = False
    project_ids: list[DbId] = []
    business_unit_ids: list[DbId] = []
    note: str = Field("", max_length=200)


class RuleQuery(Schema):
    trigger: str = ""


class EarnIn(Schema):
    member_number: str = Field("", max_length=20)
    phone: str = Field("", max_length=30)
    card_token: str = Field("", max_length=200)
    trigger: str
    source_type: str = Field(..., min_length=1, max_length=40)
    source_id: str = Field(..., min_length=1, max_length=64)
    amount_yuan: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    project_id: DbId | None = None
    business_unit_id: DbId | None = None
    at: dt.datetime | None = None


class EarnOut(Schema):
    outcome: str
    points: int
    wanted: int
    rule_version: str
    entry_id: int | None
    entry_points: int | None
    pending: bool
    message: str


def _rule_out(rule: EarningRule, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "code": rule.code,
        "version": rule.version,
        "rule_version": rule.label,
        "name": rule.name,
        "trigger": rule.trigger,
        "formula": rule.formula,
        "fixed_points": rule.fixed_points,
        "rate_per_yuan": rule.rate_per_yuan,
        "unit": rule.unit,
        "business_unit_id": rule.business_unit_id,
        "apply_tier_multiplier": rule.apply_tier_multiplier,
        "cap_per_day": rule.cap_per_day,
        "cap_per_month": rule.cap_per_month,
        "valid_from": rule.valid_from,
        "valid_until": rule.valid_until,
        "is_active": rule.is_active,
        "pending": rule.pending,
        "project_ids": [p.pk for p in rule.projects.all()],
        "business_unit_ids": [u.pk for u in rule.business_units.all()],
        "entries": counts.get(rule.label, 0),
    }


def _earn_out(result: EarnResult) -> dict[str, Any]:
    entry = result.entry
    return {
        "outcome": result.outcome,
        "points": result.points,
        "wanted": result.wanted,
        "rule_version": result.rule_version,
        "entry_id": entry.pk if entry else None,
        "entry_points": (entry.amount if entry else None),
        "pending": bool(entry and entry.is_pending),
        "message": result.message,
    }


def _unit(pk: int | None) -> BusinessUnit | None:
    if pk is None:
        return None
    unit = BusinessUnit.objects.filter(pk=pk).first()
    if unit is None:
        raise NotFound(gettext("Business unit not found."), code="business_unit_not_found")
    return unit


@router.get("/rules", response=list[RuleOut])
def rules(request: AuthedRequest, filters: Query[RuleQuery]) -> list[dict[str, Any]]:
    found = list(rule_list(viewer=request.auth, trigger=filters.trigger or None))
    counts = entry_counts(found)
    return [_rule_out(r, counts) for r in found]


@router.post("/rules", response={201: RuleOut})
def rule_add(request: AuthedRequest, payload: RuleIn) -> Status[dict[str, Any]]:
    unit = _unit(payload.business_unit_id)
    assert unit is not None
    units = list(BusinessUnit.objects.filter(pk__in=payload.business_unit_ids))
    projects = list(OrgNode.objects.filter(pk__in=payload.project_ids, kind="project"))
    if len(units) != len(set(payload.business_unit_ids)) or len(projects) != len(
        set(payload.project_ids)
    ):
        raise ValidationFailed(fields={"scope": [gettext("Unknown project or business unit.")]})
    rule = rule_create(
        actor=request.auth,
        code=payload.code,
        name=payload.name,
        trigger=payload.trigger,
        formula=payload.formula,
        fixed_points=payload.fixed_points,
        rate_per_yuan=payload.rate_per_yuan,
        unit=payload.unit,
        business_unit=unit,
        apply_tier_multiplier=payload.apply_tier_multiplier,
        cap_per_day=payload.cap_per_day,
        cap_per_month=payload.cap_per_month,
        valid_from=payload.valid_from,
        valid_until=payload.valid_until,
        is_active=payload.is_active,
        pending=payload.pending,
        projects=projects,
        business_units=units,
        note=payload.note,
    )
    return Status(201, _rule_out(rule, {}))


def _earner(viewer: Any, payload: EarnIn) -> Member:
    if payload.card_token:
        member = card_token_verify(payload.card_token)
        # The code proves the card was shown; the member must still be in the caller's scope.
        return get_scoped(Member.objects.all(), viewer, pk=member.pk)
    if not payload.member_number and not payload.phone:
        raise ValidationFailed(
            fields={
                "member_number": [gettext("Give a member number, a phone number or a card code.")]
            }
        )
    return member_lookup(viewer=viewer, number=payload.member_number, phone=payload.phone)


@router.post("/earn", response=EarnOut)
def earn(request: AuthedRequest, payload: EarnIn) -> dict[str, Any]:
    """Award what the earning rules give for one act (idempotent on the source)."""
    if scope_of(request.auth).external:
        raise Forbidden()
    member = _earner(request.auth, payload)
    project = None
    if payload.project_id is not None:
        project = OrgNode.objects.filter(pk=payload.project_id, kind="project").first()
        if project is None:
            raise NotFound(gettext("Project not found."), code="project_not_found")
    result = points_earn(
        actor=request.auth,
        member=member,
        trigger=payload.trigger,
        source_type=payload.source_type,
        source_id=payload.source_id,
        amount_yuan=payload.amount_yuan,
        project=project,
        business_unit=_unit(payload.business_unit_id),
        at=payload.at,
    )
    return _earn_out(result)


# --- manual adjustments with approval ---------------------------------------------------------


class AdjustmentIn(Schema):
    member_id: DbId
    points: int = Field(..., ge=-(10**6), le=10**6)
    reason: str = Field(..., min_length=1, max_length=200)


class DecisionIn(Schema):
    note: str = Field("", max_length=200)


class AdjustmentOut(Schema):
    id: int
    member_id: int
    points: int
    reason: str
    status: str
    requested_by_id: int
    requested_at: dt.datetime
    decided_by_id: int | None
    decided_at: dt.datetime | None
    note: str
    entry_id: int | None


class AdjustmentQuery(Schema):
    status: str = ""


def _adjustment(viewer: Any, pk: int) -> AdjustmentRequest:
    # adjustment_list is already limited to members the viewer can see.
    found = adjustment_list(viewer=viewer).filter(pk=pk).first()
    if found is None:
        raise NotFound()
    return found


@router.get("/adjustments", response=list[AdjustmentOut])
def adjustments(request: AuthedRequest, filters: Query[AdjustmentQuery]) -> Any:
    return list(adjustment_list(viewer=request.auth, status=filters.status or None)[:200])


@router.post("/adjustments", response={201: AdjustmentOut})
def adjustment_add(request: AuthedRequest, payload: AdjustmentIn) -> Status[AdjustmentRequest]:
    member = get_scoped(Member.objects.all(), request.auth, pk=payload.member_id)
    req = adjustment_request(
        actor=request.auth, member=member, points=payload.points, reason=payload.reason
    )
    return Status(201, req)


@router.post("/adjustments/{request_id}/approve", response=AdjustmentOut)
def adjustment_approve_ep(
    request: AuthedRequest, request_id: DbId, payload: DecisionIn
) -> AdjustmentRequest:
    req = _adjustment(request.auth, request_id)
    return adjustment_approve(actor=request.auth, request=req, note=payload.note)


@router.post("/adjustments/{request_id}/reject", response=AdjustmentOut)
def adjustment_reject_ep(
    request: AuthedRequest, request_id: DbId, payload: DecisionIn
) -> AdjustmentRequest:
    req = _adjustment(request.auth, request_id)
    return adjustment_reject(actor=request.auth, request=req, note=payload.note)
