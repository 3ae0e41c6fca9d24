"""Points API for integrations (a mall POS, the portal): award, redeem, balance, history.

Retries are safe twice over: the Idempotency-Key middleware replays the first answer for
one key, and the ledger's unique (source_type, source_id, kind) awards a receipt once
even when two different keys carry it.
"""

import datetime as dt
import time
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema

from homeclub.api.types import DbId, Offset
from homeclub.club.api import ensure_staff
from homeclub.club.models import Member
from homeclub.club.selectors import member_get, member_get_for_ledger
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.org.models import BusinessUnit

from . import rules
from .models import Entry
from .selectors import account_entries, account_for_member, account_lots, point_value_at
from .services import (
    points_award,
    points_confirm,
    points_redeem,
    points_redeem_cancel,
    points_reverse,
)

router = Router(tags=["points"])


class EntryOut(Schema):
    id: int
    kind: str
    amount: int
    points: int
    pending_delta: int
    debt_delta: int
    balance_after: int
    pending_after: int
    debt_after: int
    source_type: str
    source_id: str
    business_unit_id: int | None
    bu_units: Decimal | None
    rate_id: int | None
    point_value_id: int | None
    reason: str
    occurred_at: dt.datetime


class LotOut(Schema):
    id: int
    points: int
    remaining: int
    earned_at: dt.datetime
    expires_at: dt.datetime


class AccountOut(Schema):
    member_id: int
    member_number: str
    balance: int
    pending: int
    debt: int
    yuan_value: Decimal | None
    lots: list[LotOut]


class EntryPage(Schema):
    count: int
    results: list[EntryOut]


class MemberRef(Schema):
    member_id: DbId | None = None
    member_number: str = ""


class AwardIn(MemberRef):
    business_unit_id: DbId
    amount_bu_units: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2)
    points: int | None = Field(None, ge=1, le=10**12)
    source_type: str = Field(..., min_length=1, max_length=40)
    source_id: str = Field(..., min_length=1, max_length=64)
    reason: str = Field("", max_length=200)
    pending: bool = False


class RedeemIn(MemberRef):
    points: int = Field(..., ge=1, le=10**12)
    source_type: str = Field(..., min_length=1, max_length=40)
    source_id: str = Field(..., min_length=1, max_length=64)
    reason: str = Field("", max_length=200)
    business_unit_id: DbId | None = None


class SourceIn(Schema):
    source_type: str = Field(..., min_length=1, max_length=40)
    source_id: str = Field(..., min_length=1, max_length=64)
    reason: str = Field("", max_length=200)


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0


def entry_out(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "amount": entry.amount,
        "points": entry.points,
        "pending_delta": entry.pending_delta,
        "debt_delta": entry.debt_delta,
        "balance_after": entry.balance_after,
        "pending_after": entry.pending_after,
        "debt_after": entry.debt_after,
        "source_type": entry.source_type,
        "source_id": entry.source_id,
        "business_unit_id": entry.business_unit_id,
        "bu_units": entry.bu_units,
        "rate_id": entry.rate_id,
        "point_value_id": entry.point_value_id,
        "reason": entry.reason,
        "occurred_at": entry.occurred_at,
    }


def _member(viewer: Any, ref: MemberRef) -> Member:
    if ref.member_id is not None:
        return member_get_for_ledger(viewer=viewer, pk=ref.member_id)
    if ref.member_number:
        return member_get_for_ledger(viewer=viewer, number=ref.member_number)
    raise ValidationFailed(fields={"member_id": [gettext("Give a member id or a member number.")]})


_UNIT_TTL = 30.0  # seconds; business units are reference data
_units: dict[int, tuple[float, BusinessUnit]] = {}


def _unit(unit_id: int) -> BusinessUnit:
    """The business unit, from a short per-process cache: a POS awards for the same few
    units all day. Only existence is checked here, as before."""
    now = time.monotonic()
    hit = _units.get(unit_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    unit = BusinessUnit.objects.filter(pk=unit_id).first()
    if unit is None:
        raise NotFound(gettext("Business unit not found."), code="business_unit_not_found")
    _units[unit_id] = (now + _UNIT_TTL, unit)
    return unit


def _source_member(viewer: Any, payload: SourceIn, kind: str) -> None:
    """The entry behind a source must belong to a member the caller may see."""
    entry = (
        Entry.objects.filter(
            source_type=payload.source_type, source_id=payload.source_id, kind=kind
        )
        .select_related("account")
        .first()
    )
    if entry is None:
        raise NotFound()
    member_get(viewer=viewer, pk=entry.account.member_id)


@router.post("/awards", response=EntryOut)
def award(request: AuthedRequest, payload: AwardIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    member = _member(request.auth, payload)
    entry = points_award(
        actor=request.auth,
        member=member,
        business_unit=_unit(payload.business_unit_id),
        amount_bu_units=payload.amount_bu_units,
        points=payload.points,
        source_type=payload.source_type,
        source_id=payload.source_id,
        reason=payload.reason,
        pending=payload.pending,
    )
    return entry_out(entry)


@router.post("/awards/confirm", response=EntryOut)
def confirm(request: AuthedRequest, payload: SourceIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    _source_member(request.auth, payload, Entry.Kind.EARN)
    return entry_out(
        points_confirm(
            actor=request.auth, source_type=payload.source_type, source_id=payload.source_id
        )
    )


@router.post("/awards/reverse", response=EntryOut)
def reverse(request: AuthedRequest, payload: SourceIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    _source_member(request.auth, payload, Entry.Kind.EARN)
    return entry_out(
        points_reverse(
            actor=request.auth,
            source_type=payload.source_type,
            source_id=payload.source_id,
            reason=payload.reason,
        )
    )


@router.post("/redemptions", response=EntryOut)
def redeem(request: AuthedRequest, payload: RedeemIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    member = _member(request.auth, payload)
    unit = _unit(payload.business_unit_id) if payload.business_unit_id else None
    entry = points_redeem(
        actor=request.auth,
        member=member,
        points=payload.points,
        source_type=payload.source_type,
        source_id=payload.source_id,
        reason=payload.reason,
        business_unit=unit,
    )
    return entry_out(entry)


@router.post("/redemptions/cancel", response=EntryOut)
def redeem_cancel(request: AuthedRequest, payload: SourceIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    _source_member(request.auth, payload, Entry.Kind.REDEEM)
    return entry_out(
        points_redeem_cancel(
            actor=request.auth,
            source_type=payload.source_type,
            source_id=payload.source_id,
            reason=payload.reason,
        )
    )


@router.get("/members/{member_id}/account", response=AccountOut)
def account(request: AuthedRequest, member_id: DbId) -> dict[str, Any]:
    member = member_get(viewer=request.auth, pk=member_id)
    acc = account_for_member(member)
    value = point_value_at(dt.datetime.now(tz=dt.UTC))
    balance = acc.balance if acc else 0
    return {
        "member_id": member.pk,
        "member_number": member.number or "",
        "balance": balance,
        "pending": acc.pending if acc else 0,
        "debt": acc.debt if acc else 0,
        "yuan_value": rules.yuan_for(balance, value.yuan_per_point) if value else None,
        "lots": list(account_lots(acc)[:200]) if acc else [],
    }


@router.get("/members/{member_id}/entries", response=EntryPage)
def entries(request: AuthedRequest, member_id: DbId, page: Query[PageQuery]) -> dict[str, Any]:
    member = member_get(viewer=request.auth, pk=member_id)
    acc = account_for_member(member)
    if acc is None:
        return {"count": 0, "results": []}
    qs = account_entries(acc)
    return {
        "count": qs.count(),
        "results": [entry_out(e) for e in qs[page.offset : page.offset + page.limit]],
    }
