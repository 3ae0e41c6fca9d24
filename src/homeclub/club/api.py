"""Club API: join, look up (by phone, member number or card), freeze, close."""

import datetime as dt
from typing import Any

from django.utils.translation import gettext
from ninja import Query, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.common.errors import Forbidden, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.common.masking import mask_phone
from homeclub.customers.selectors import customer_get
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import scope_of

from .models import Member
from .selectors import member_get, member_lookup
from .services import member_close, member_freeze, member_join

router = Router(tags=["club"])


class MemberOut(Schema):
    id: int
    number: str
    status: str
    customer_id: int
    name: str
    mobile: str
    joined_business_unit_id: int
    joined_at: dt.datetime
    card_payload: str


class JoinIn(Schema):
    customer_id: DbId
    business_unit_id: DbId


class LookupQuery(Schema):
    phone: str = ""
    number: str = ""
    card: str = ""


class StatusIn(Schema):
    reason: str = ""


def member_out(member: Member) -> dict[str, Any]:
    return {
        "id": member.pk,
        "number": member.number or "",
        "status": member.status,
        "customer_id": member.customer_id,
        "name": member.customer.name,
        "mobile": mask_phone(member.customer.mobile),
        "joined_business_unit_id": member.joined_business_unit_id,
        "joined_at": member.joined_at,
        "card_payload": member.card_payload,
    }


def ensure_staff(viewer: Any) -> None:
    """Members, agents and merchant staff read their own records; they change nothing here."""
    if scope_of(viewer).external:
        raise Forbidden()


@router.post("/members", response={201: MemberOut})
def join(request: AuthedRequest, payload: JoinIn) -> Status[dict[str, Any]]:
    ensure_staff(request.auth)
    customer = customer_get(viewer=request.auth, pk=payload.customer_id)
    unit = BusinessUnit.objects.filter(pk=payload.business_unit_id).first()
    if unit is None:
        raise NotFound(gettext("Business unit not found."), code="business_unit_not_found")
    member = member_join(actor=request.auth, customer=customer, business_unit=unit)
    return Status(201, member_out(member_get(viewer=request.auth, pk=member.pk)))


@router.get("/members/lookup", response=MemberOut)
def lookup(request: AuthedRequest, filters: Query[LookupQuery]) -> dict[str, Any]:
    member = member_lookup(
        viewer=request.auth, phone=filters.phone, number=filters.number, card=filters.card
    )
    return member_out(member)


@router.get("/members/{member_id}", response=MemberOut)
def detail(request: AuthedRequest, member_id: DbId) -> dict[str, Any]:
    return member_out(member_get(viewer=request.auth, pk=member_id))


@router.post("/members/{member_id}/freeze", response=MemberOut)
def freeze(request: AuthedRequest, member_id: DbId, payload: StatusIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    member = member_get(viewer=request.auth, pk=member_id)
    return member_out(member_freeze(actor=request.auth, member=member, reason=payload.reason))


@router.post("/members/{member_id}/close", response=MemberOut)
def close(request: AuthedRequest, member_id: DbId, payload: StatusIn) -> dict[str, Any]:
    ensure_staff(request.auth)
    member = member_get(viewer=request.auth, pk=member_id)
    return member_out(member_close(actor=request.auth, member=member, reason=payload.reason))
